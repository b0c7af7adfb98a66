import pytest
import timm
import torch
from safetensors.torch import save_file

from openstl_unistd.models import UniSTD
from openstl_unistd.modules.lora_injection import RAMoELinear
from openstl_unistd.modules.ra_moe import RAMoELoRA
from openstl_unistd.tasks import PAPER_TASKS
from openstl_unistd.models.parameters import ParameterCount, count_parameters

from .test_tasks import PAPER_TABLE


@pytest.fixture(scope='module')
def paper_model():
    from .conftest import TINY_BACKBONE

    torch.manual_seed(0)
    return UniSTD(list(PAPER_TASKS), hidden_channels=8, **TINY_BACKBONE).eval()


@pytest.fixture(scope='module')
def direct_paper_model():
    from .conftest import TINY_BACKBONE

    torch.manual_seed(0)
    return UniSTD(list(PAPER_TASKS), hidden_channels=8, decode='direct', **TINY_BACKBONE).eval()


@pytest.mark.parametrize('decode', ['rollout', 'direct'])
@pytest.mark.parametrize('name', list(PAPER_TASKS))
def test_every_paper_task_returns_exactly_its_future_frames(paper_model, direct_paper_model, name, decode):
    spec = PAPER_TASKS[name]
    model = paper_model if decode == 'rollout' else direct_paper_model
    with torch.no_grad():
        y = model(torch.randn(2, *spec.input_shape), name)
    assert y.shape == (2, *spec.output_shape)
    assert torch.isfinite(y).all()
    assert model.pass_frames(name) == (spec.input_frames if decode == 'rollout' else spec.output_frames)


def test_vit_b_structure_gives_the_method_token_grid_for_every_task():
    with torch.device('meta'):
        model = UniSTD(list(PAPER_TASKS), backbone='clip')
    backbone = model.backbone
    assert (len(backbone.blocks), backbone.embed_dim, backbone.num_heads) == (12, 768, 12)
    assert type(backbone.blocks[0].mlp.act).__name__ == 'QuickGELU'
    for name, (_, (grid_h, grid_w)) in PAPER_TABLE.items():
        spec = PAPER_TASKS[name]
        tokens, _ = model.encoders[name](torch.empty(2, *spec.input_shape, device='meta'))
        assert tokens.shape == (2, grid_h * grid_w, 768), name
        # paper configs decode T → T passes (rolled out to T'); Table 8's stride-1 width is that T
        frames = spec.input_frames
        assert model.decoders[name](tokens).shape == (2, frames, *spec.output_shape[1:]), name
        assert model.encoders[name].blocks[0].keep[0].out_channels == frames, name
        assert model(torch.empty(2, *spec.input_shape, device='meta'), name).shape == (2, *spec.output_shape)


def test_adapters_and_temporal_modules_sit_in_every_block(tiny_unistd):
    model = tiny_unistd(['taxibj'])
    for block in model.backbone.blocks:
        qkv, proj = block.attn.qkv, block.attn.proj
        assert isinstance(qkv, RAMoELinear) and isinstance(proj, RAMoELinear)
        assert (qkv.adapter.groups, qkv.adapter.num_experts) == (3, 6)
        assert (proj.adapter.groups, proj.adapter.num_experts) == (1, 2)
        assert block.temporal.adapter.num_experts == 2 and block.temporal.ffn[0].out_features == 192 // 6
        assert qkv.adapter.max_rank == proj.adapter.max_rank == block.temporal.adapter.max_rank == 32
    # per block: Q, K, V (3 × 6 experts), Proj (2) and temporal (2), each expert A and B of R × 192, R = 32
    lora = model.parameter_breakdown()['LoRA experts']
    assert lora.trainable == 2 * (3 * 6 + 2 + 2) * 2 * 32 * 192 and lora.frozen == 0


def _tiny_vit_file(tmp_path):
    torch.manual_seed(3)
    vit = timm.create_model('vit_tiny_patch16_224', depth=2, num_classes=0).eval()
    path = tmp_path / 'vit_tiny.safetensors'
    save_file(vit.state_dict(), str(path))
    return vit, path


def test_fresh_unistd_backbone_equals_the_frozen_pretrained_blocks(tiny_unistd, tmp_path):
    vit, path = _tiny_vit_file(tmp_path)
    model = tiny_unistd(['kth'], pretrained=str(path))
    tokens = torch.randn(2, 256, 192)
    with torch.no_grad():
        expected = vit.norm(vit.blocks(vit.norm_pre(tokens)))
        torch.testing.assert_close(model.backbone(tokens), expected, rtol=0, atol=0)
        # and a trained-looking adapter does change it: the test above is not vacuous
        model.backbone.blocks[0].temporal.ffn[2].bias.fill_(1.0)
        assert not torch.allclose(model.backbone(tokens), expected)


def test_a_gradient_step_changes_only_trainable_parameters(tiny_unistd):
    torch.manual_seed(0)
    model = tiny_unistd(['taxibj', 'enso'])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    spec = PAPER_TASKS['taxibj']
    loss = torch.nn.functional.mse_loss(model(torch.randn(2, *spec.input_shape), 'taxibj'),
                                        torch.randn(2, *spec.output_shape))
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed <= trainable
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    for expected in ('encoders.taxibj.proj.weight', 'decoders.taxibj.readout.weight',
                     'backbone.blocks.0.attn.qkv.adapter.lora_B',
                     'backbone.blocks.1.temporal.ffn.2.weight'):
        assert expected in changed
    assert not any(n.startswith(('encoders.enso', 'decoders.enso')) for n in changed)


def test_parameter_breakdown_gives_each_part_its_own_count(tiny_unistd):
    """Every part against a count made without the breakdown: the ViT's own tensors from a fresh timm
    ViT, the task ends from their modules, the adapters from their shapes (ViT-Tiny: L = 192, 2 blocks;
    the paper's RA-MoE: Q/K/V 3 groups × 6 experts, Proj 1 × 2, temporal RA-MoE1D 1 × 2, ranks ≤ 32;
    temporal FFN L → L/6 → L). Break caught: a part counted under another (e.g. ``'router': 'LoRA
    experts'`` in ``RAMoELoRA.PARTS``, or the temporal module's nested RA-MoE1D counted as its FFN),
    which keeps every sum equal to the total."""
    model = tiny_unistd(['taxibj', 'mmnist'])
    vit = timm.create_model('vit_tiny_patch16_224', depth=2, num_classes=0)
    used = [p for name, p in vit.named_parameters() if name.startswith(('norm_pre.', 'blocks.', 'norm.'))]
    width, blocks, max_rank = 192, 2, 32
    adapters = [(3, 6), (1, 2), (1, 2)]            # (groups, experts) of the Q/K/V, Proj and temporal adapters
    hidden = width // 6
    expected = {
        'task encoders': ParameterCount(count_parameters(model.encoders).total, 0),
        'task decoders': ParameterCount(count_parameters(model.decoders).total, 0),
        'backbone (pretrained)': ParameterCount(0, count_parameters(used).total),
        'LoRA experts': ParameterCount(blocks * sum(g * e * max_rank * 2 * width for g, e in adapters), 0),
        'routers': ParameterCount(blocks * sum(width * g * e for g, e in adapters), 0),
        'ranks': ParameterCount(blocks * sum(g * e for g, e in adapters), 0),
        'temporal FFN': ParameterCount(blocks * (width * hidden + hidden + hidden * width + width), 0),
    }
    assert model.parameter_breakdown() == expected
    assert expected['ranks'].trainable == 2 * (18 + 2 + 2)
    total = count_parameters(model)
    assert sum(c.trainable for c in expected.values()) == total.trainable
    assert sum(c.frozen for c in expected.values()) == total.frozen


def test_without_lora_and_temporal_only_the_task_heads_train(tiny_unistd):
    model = tiny_unistd(['taxibj'], lora=False, temporal=False)
    assert not any(isinstance(m, RAMoELoRA) for m in model.modules())
    parts = model.parameter_breakdown()
    assert {p for p, c in parts.items() if c.trainable} == {'task encoders', 'task decoders'}


def test_lora_and_temporal_options_are_checked(tiny_unistd):
    model = tiny_unistd(['taxibj'], lora=dict(qkv_experts=2, top_k=1), temporal=dict(hidden_ratio=4))
    adapter = model.backbone.blocks[0].attn.qkv.adapter
    assert (adapter.num_experts, adapter.top_k) == (2, 1)
    with pytest.raises(KeyError, match=r"model.lora: unknown key\(s\) \['experts'\]"):
        tiny_unistd(['taxibj'], lora=dict(experts=2))


@pytest.mark.parametrize('shape,message', [
    ((2, 4, 3, 32, 32), r'C is 3, expected 2'),
    ((2, 5, 2, 32, 32), r'T is 5, expected 4'),
    ((2, 4, 2, 32, 30), r'W is 30, expected 32'),
    ((2, 4, 2, 32), r'\(2, 4, 2, 32\)$'),
])
def test_bad_input_names_the_task_and_both_shapes(paper_model, shape, message):
    with pytest.raises(ValueError, match=r"task 'taxibj': expected input of shape \(B, T, C, H, W\) = "
                                         r'\(B, 4, 2, 32, 32\), got .*' + message):
        paper_model(torch.zeros(shape), 'taxibj')


def test_unknown_task_names_the_served_tasks(tiny_unistd):
    model = tiny_unistd(['taxibj', 'enso'])
    with pytest.raises(ValueError, match=r"unknown task 'kth': this model serves \['enso', 'taxibj'\]"):
        model(torch.zeros(1, 10, 1, 128, 128), 'kth')


@pytest.mark.parametrize('train_backbone', [False, True])
def test_train_backbone_decides_whether_the_vit_weights_train_and_nothing_else(train_backbone):
    model = UniSTD(['demo_traffic'], backbone='vit_tiny_patch16_224', backbone_kwargs=dict(depth=1),
                   hidden_channels=8, train_backbone=train_backbone)
    grad = {name: p.requires_grad for name, p in model.named_parameters()}
    vit_own = [n for n in grad if n.startswith('backbone.') and '.adapter.' not in n and '.temporal.' not in n]
    assert vit_own and all(grad[n] == train_backbone for n in vit_own)
    assert all(grad[n] for n in grad if n not in vit_own)               # adapters, temporal, ends: always
    x = torch.rand(2, 4, 2, 32, 32)
    model(x, 'demo_traffic').square().mean().backward()
    assert (model.backbone.blocks[0].mlp.fc1.weight.grad is not None) == train_backbone
