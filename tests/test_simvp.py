import math

import pytest
import torch
from timm.layers import DropPath

from openstl_unistd.core.losses import differential_divergence
from openstl_unistd.models.simvp import SimVPDecoder, SimVPEncoder
from openstl_unistd.modules.simvp_blocks import MidIncepNet, MidMetaNet
from openstl_unistd.tasks import PAPER_TASKS
from openstl_unistd.models.parameters import count_parameters

from .reference_models import SimVP

# Every literal below was measured with OpenSTL's `SimVP_Model` (openstl/models/simvp_model.py),
# OpenSTL commit c74deb5d4c3da585291f9f18281f3fefdbba3a54 (2024-03-04), on 2026-11-24, torch 2.14.1,
# timm 1.0.11. OpenSTL's configs give no `mlp_ratio`, so SimVP_Model's default 8.0 applies.
OPENSTL_PARAMETER_COUNTS = [
    # configs/mmnist/simvp/SimVP_IncepU.py: in_shape (10, 1, 64, 64), hid_S 64, hid_T 512, N_S 4, N_T 8, kernels 3
    (dict(in_shape=(10, 1, 64, 64), hid_S=64, hid_T=512, N_S=4, N_T=8, model_type='IncepU'), 57_946_113),
    # configs/mmnist/simvp/SimVP_gSTA.py: in_shape (10, 1, 64, 64), hid_S 64, hid_T 512, N_S 4, N_T 8, kernels 3
    (dict(in_shape=(10, 1, 64, 64), hid_S=64, hid_T=512, N_S=4, N_T=8, model_type='gSTA'), 46_769_665),
    # configs/mmnist/TAU.py: in_shape (10, 1, 64, 64), hid_S 64, hid_T 512, N_S 4, N_T 8, kernels 3
    (dict(in_shape=(10, 1, 64, 64), hid_S=64, hid_T=512, N_S=4, N_T=8, model_type='tau'), 44_656_001),
    # configs/taxibj/simvp/SimVP_IncepU.py: in_shape (4, 2, 32, 32), hid_S 32, hid_T 256, N_S 2, N_T 8, kernels 3
    (dict(in_shape=(4, 2, 32, 32), hid_S=32, hid_T=256, N_S=2, N_T=8, model_type='IncepU'), 13_794_914),
    # configs/taxibj/simvp/SimVP_gSTA.py: in_shape (4, 2, 32, 32), hid_S 32, hid_T 256, N_S 2, N_T 8, kernels 3
    (dict(in_shape=(4, 2, 32, 32), hid_S=32, hid_T=256, N_S=2, N_T=8, model_type='gSTA'), 9_961_058),
    # configs/taxibj/TAU.py: in_shape (4, 2, 32, 32), hid_S 32, hid_T 256, N_S 2, N_T 8, kernels 3
    (dict(in_shape=(4, 2, 32, 32), hid_S=32, hid_T=256, N_S=2, N_T=8, model_type='tau'), 9_545_442),
    # no OpenSTL config: 5×5 encoder/decoder kernels, mlp_ratio 4, N_T 3 (odd) on the KITTI shape
    (dict(in_shape=(10, 3, 128, 160), hid_S=16, hid_T=64, N_S=4, N_T=3, model_type='tau', mlp_ratio=4.0,
          spatio_kernel_enc=5, spatio_kernel_dec=5), 524_003),
    # no OpenSTL config: three halvings (N_S 6), IncepU with the shortest translator (N_T 2)
    (dict(in_shape=(2, 3, 128, 128), hid_S=16, hid_T=64, N_S=6, N_T=2, model_type='IncepU'), 242_099),
]


@pytest.mark.parametrize('config, expected', OPENSTL_PARAMETER_COUNTS,
                         ids=[f"{c['model_type']}-{c['in_shape']}-N_S{c['N_S']}" for c, _ in OPENSTL_PARAMETER_COUNTS])
def test_parameter_count_equals_openstl(config, expected):
    with torch.device('meta'):
        model = SimVP(**config)
    assert count_parameters(model).total == expected


TRANSLATOR_KINDS = ('incepu', 'gsta', 'tau')


@pytest.mark.parametrize('index, name', list(enumerate(PAPER_TASKS)))
def test_every_paper_task_shape_comes_back_exactly(index, name):
    spec = PAPER_TASKS[name]
    model_type = TRANSLATOR_KINDS[index % len(TRANSLATOR_KINDS)]
    torch.manual_seed(0)
    model = SimVP(spec.input_shape, hid_S=8, hid_T=32, N_T=2, model_type=model_type).eval()
    with torch.no_grad():
        y = model(torch.randn(1, *spec.input_shape))
    assert y.shape == (1, *spec.input_shape)
    assert torch.isfinite(y).all()


def _fill_deterministically(model):
    """Weights as a function of each parameter's position and name only (no RNG), so that the values
    OpenSTL produced with the same filling can be written down. Parameters are registered in
    OpenSTL's order."""
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            wave = torch.sin(0.7 * torch.arange(p.numel(), dtype=torch.float64) + i).reshape(p.shape)
            if p.dim() > 1:
                p.copy_(wave * math.sqrt(3.0 * p.shape[0] / p.numel()))
            else:
                p.copy_(0.1 * wave + (0.0 if name.endswith('bias') else 1.0))


# Output mean, std and y.flatten()[::397][:6] of OpenSTL's SimVP_Model (commit and date as above) for
# in_shape (4, 2, 16, 16), hid_S 8, hid_T 32, N_S 2, N_T 3, eval mode, the weights of
# `_fill_deterministically` and the input sin(0.3·k) of shape (2, 4, 2, 16, 16). Our model gave the same
# outputs bit for bit there.
OPENSTL_OUTPUTS = {
    'incepu': (-0.13026267290115356, 0.36784374713897705,
               [0.028623, -0.352564, -0.679842, -0.75949, -1.777083, -0.044491]),
    'gsta': (-0.13057038187980652, 0.3133760094642639,
             [0.060465, -0.352027, -0.073385, -0.728251, -1.045482, -0.052208]),
    'tau': (-0.13012883067131042, 0.3097037374973297,
            [0.064428, -0.332561, -0.073043, -0.725681, -0.816709, -0.079404]),
}


@pytest.mark.parametrize('model_type', TRANSLATOR_KINDS)
def test_outputs_equal_openstl_for_the_same_weights(model_type):
    model = SimVP((4, 2, 16, 16), hid_S=8, hid_T=32, N_S=2, N_T=3, model_type=model_type).eval()
    _fill_deterministically(model)
    x = torch.sin(0.3 * torch.arange(2 * 4 * 2 * 16 * 16, dtype=torch.float64)).reshape(2, 4, 2, 16, 16).float()
    with torch.no_grad():
        y = model(x)
    mean, std, samples = OPENSTL_OUTPUTS[model_type]
    assert y.mean().item() == pytest.approx(mean, abs=1e-5)
    assert y.std().item() == pytest.approx(std, abs=1e-5)
    assert y.flatten()[::397][:6].tolist() == pytest.approx(samples, abs=1e-5)


def test_encoder_halves_and_decoder_restores_with_the_skip():
    torch.manual_seed(0)
    encoder, decoder = SimVPEncoder(3, 8, 4, 3), SimVPDecoder(8, 3, 4, 3)
    latent, skip = encoder(torch.randn(6, 3, 24, 40))
    assert latent.shape == (6, 8, 6, 10) and skip.shape == (6, 8, 24, 40)
    y = decoder(latent, skip)
    assert y.shape == (6, 3, 24, 40)
    assert not torch.allclose(y, decoder(latent, torch.zeros_like(skip)))


@pytest.mark.parametrize('translator', [
    MidIncepNet(24, 32, 3),
    MidMetaNet(24, 32, 3, 'gsta'),
    MidMetaNet(24, 32, 3, 'TAU'),
], ids=['incepu', 'gsta', 'tau'])
def test_translators_map_stacked_frames_to_the_same_shape(translator):
    x = torch.randn(2, 24, 5, 7)
    assert translator.eval()(x).shape == x.shape


def test_stochastic_depth_follows_openstl_schedule():
    rates = [getattr(stage.block.drop_path, 'drop_prob', 0.0) for stage in MidMetaNet(8, 16, 4, drop_path=0.0).enc]
    assert rates == pytest.approx([0.01, 0.02 / 3, 0.01 / 3, 0.0])
    net = MidMetaNet(8, 16, 3, 'tau', drop_path=0.2)
    assert all(isinstance(stage.block.drop_path, DropPath) for stage in net.enc)
    assert [stage.block.drop_path.drop_prob for stage in net.enc] == pytest.approx([0.01, 0.105, 0.2])
    assert net.enc[-1].block.drop_path.drop_prob == 0.2


def test_blocks_start_with_small_layer_scales():
    for stage in MidMetaNet(8, 16, 2, 'gsta').enc + MidMetaNet(8, 16, 2, 'tau').enc:
        assert torch.equal(stage.block.layer_scale_1, torch.full_like(stage.block.layer_scale_1, 1e-2))
        assert torch.equal(stage.block.layer_scale_2, torch.full_like(stage.block.layer_scale_2, 1e-2))


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match=r"model_type must be one of .*got 'swin'"):
        SimVP((4, 2, 32, 32), model_type='swin')
    with pytest.raises(ValueError, match=r"model_type must be one of \('gsta', 'tau'\), got 'incepu'"):
        MidMetaNet(8, 16, 2, 'incepu')
    with pytest.raises(ValueError, match='N_S must be an even integer of at least 2 .*got 3'):
        SimVP((4, 2, 32, 32), N_S=3)
    with pytest.raises(ValueError, match=r'multiples of 2 \*\* \(N_S // 2\) = 4 .*H=30, W=32'):
        SimVP((4, 2, 30, 32), N_S=4)
    with pytest.raises(ValueError, match='N2 must be at least 2, got 1'):
        MidIncepNet(8, 16, 1)
    with pytest.raises(ValueError, match=r'expected input \(B, T=4, C=2, H, W\), got \(1, 5, 2, 32, 32\)'):
        SimVP((4, 2, 32, 32), hid_S=8, hid_T=16, N_T=2)(torch.zeros(1, 5, 2, 32, 32))


def _divergence_by_formula(pred, target, tau, eps):
    """The definition, one (sample, frame gap) at a time, in float64."""
    pred, target = pred.double(), target.double()
    B, T = pred.shape[:2]
    terms = []
    for b in range(B):
        for t in range(T - 1):
            p = torch.exp((pred[b, t + 1] - pred[b, t]).flatten() / tau)
            q = torch.exp((target[b, t + 1] - target[b, t]).flatten() / tau)
            p, q = p / p.sum(), q / q.sum()
            terms.append(p * torch.log(p / (q + eps) + eps))
    return torch.cat(terms).mean()


@pytest.mark.parametrize('tau', [0.1, 1.0])
def test_differential_divergence_matches_its_definition(tau):
    torch.manual_seed(0)
    pred, target = torch.randn(2, 5, 3, 4, 6), torch.randn(2, 5, 3, 4, 6)
    loss = differential_divergence(pred, target, tau=tau)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(_divergence_by_formula(pred, target, tau, 1e-12).item(), rel=1e-5)
    assert loss.item() > 0


def test_differential_divergence_sees_only_frame_differences():
    torch.manual_seed(1)
    target = torch.randn(2, 4, 1, 8, 8)
    shifted = target + 3.0
    assert differential_divergence(shifted, target).abs().item() < 1e-6
    assert differential_divergence(target.flip(1), target).item() > 1e-3


def test_differential_divergence_is_zero_for_two_frames_as_in_openstl():
    pred = torch.randn(3, 2, 1, 4, 4, requires_grad=True)
    assert differential_divergence(pred, torch.randn(3, 2, 1, 4, 4)).item() == 0.0


def test_differential_divergence_gradient_flows_to_the_prediction():
    torch.manual_seed(2)
    pred = torch.randn(2, 4, 2, 5, 5, requires_grad=True)
    differential_divergence(pred, torch.randn(2, 4, 2, 5, 5)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert torch.allclose(pred.grad.sum(dim=(2, 3, 4)), torch.zeros(2, 4), atol=1e-6)
