"""Multi-task baselines: shapes on every paper task, equality with the single-task models, joint training."""
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from openstl_unistd.core.losses import differential_divergence
from openstl_unistd.models.multitask_earthformer import MultiTaskEarthformer
from openstl_unistd.models.multitask_simvp import MultiTaskSimVP
from openstl_unistd.tasks import PAPER_TASKS, resolve_task
from openstl_unistd.engine.config import build_datamodule, build_method, build_model, build_tasks, build_trainer, load_config
from openstl_unistd.models.parameters import count_parameters

from .reference_models import SimVP

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hid_S=8, hid_T=16, N_T=2)


@pytest.mark.parametrize('model_type', ['incepu', 'gsta', 'tau'])
def test_every_paper_task_gets_exactly_its_future_frames(model_type):
    torch.manual_seed(0)
    model = MultiTaskSimVP(list(PAPER_TASKS), model_type=model_type, **TINY).eval()
    assert model.frames == 13  # SEVIR's 13 input frames are the longest
    for name, spec in PAPER_TASKS.items():
        with torch.no_grad():
            y = model(torch.rand(1, *spec.input_shape), name)
        assert y.shape == (1, *spec.output_shape), name


@pytest.mark.parametrize('model_type,shape,widths,reference', [
    # OpenSTL's configs/taxibj/simvp/SimVP_IncepU.py and configs/taxibj/TAU.py (tests/test_simvp.py)
    ('incepu', (4, 2, 32, 32), dict(hid_S=32, hid_T=256, N_S=2, N_T=8), 13_794_914),
    ('tau', (4, 2, 32, 32), dict(hid_S=32, hid_T=256, N_S=2, N_T=8), 9_545_442),
    ('gsta', (10, 1, 64, 64), dict(hid_S=64, hid_T=512, N_S=4, N_T=8), 46_769_665),
])
def test_one_task_with_equal_lengths_is_exactly_simvp(model_type, shape, widths, reference):
    t, c, h, w = shape
    task = resolve_task(dict(name='one', input_frames=t, output_frames=t, channels=c, height=h, width=w,
                             encoder_depth=1))
    with torch.device('meta'):
        joint = MultiTaskSimVP([task], model_type=model_type, **widths)
        single = SimVP(shape, model_type=model_type, **widths)
    assert count_parameters(joint).total == count_parameters(single).total == reference


def test_shared_translator_and_per_task_ends():
    model = MultiTaskSimVP(['taxibj', 'enso', 'kth'], model_type='gsta', **TINY)
    assert model.frames == 12
    assert isinstance(model.to_translator['enso'], torch.nn.Identity)       # T = frames
    assert model.to_translator['taxibj'].in_channels == 4 * 8                # T = 4 → 12 frames
    assert isinstance(model.from_translator['enso'], torch.nn.Identity)     # rollout: 12 → 12, twice
    assert model.from_translator['taxibj'].out_channels == 4 * 8             # 12 frames → T = 4
    direct = MultiTaskSimVP(['taxibj', 'enso', 'kth'], model_type='gsta', decode='direct', **TINY)
    assert direct.from_translator['enso'].out_channels == 14 * 8            # 12 → T' = 14 in one pass
    assert model.translator is not None and len(model.encoders) == 3


EARTHFORMER_TINY = dict(base_units=16, enc_depth=[1, 1], dec_depth=[1, 1], num_heads=2, num_global_vectors=2,
                        checkpoint_level=0)


def test_earthformer_gets_every_paper_task_exactly_its_future_frames():
    torch.manual_seed(0)
    model = MultiTaskEarthformer(list(PAPER_TASKS), **EARTHFORMER_TINY).eval()
    assert model.token_grids['sevir'] == (13, 24, 24) and model.token_grids['enso'] == (12, 12, 24)
    assert model.core.max_shape == (13, 14, 24, 24)
    for name, spec in PAPER_TASKS.items():
        with torch.no_grad():
            y = model(torch.rand(1, *spec.input_shape), name)
        assert y.shape == (1, *spec.output_shape), name


def test_one_task_earthformer_is_exactly_the_reference_model():
    # Earthformer's CuboidTransformerModel with base_units=16, enc/dec depth [1, 1], initial_downsample_scale=2,
    # input/target (8, 16, 16, 2), other arguments at their defaults: 161,786 parameters (tests/test_earthformer.py)
    task = resolve_task(dict(name='one', input_frames=8, output_frames=8, channels=2, height=16, width=16,
                             encoder_depth=1))
    with torch.device('meta'):
        model = MultiTaskEarthformer([task], base_units=16, initial_downsample_type='conv', enc_depth=[1, 1],
                                     dec_depth=[1, 1])
    assert count_parameters(model).total == 161_786


def test_bad_widths_and_inputs_are_named():
    with pytest.raises(ValueError, match=r"task 'enso': H and W must be multiples of 2 \*\* \(N_S // 2\) = 16"):
        MultiTaskSimVP(['enso'], N_S=8, **TINY)
    with pytest.raises(ValueError, match=r"spatial_depths given for task\(s\) \['kth'\]"):
        MultiTaskSimVP(['enso'], spatial_depths=dict(kth=2), **TINY)
    with pytest.raises(ValueError, match="model_type must be one of"):
        MultiTaskSimVP(['enso'], model_type='convlstm', **TINY)
    model = MultiTaskSimVP(['taxibj'], **TINY)
    with pytest.raises(ValueError, match=r"task 'taxibj': expected input of shape .* C is 1, expected 2"):
        model(torch.zeros(1, 4, 1, 32, 32), 'taxibj')


DEMO_TINY = {
    'data.datasets.demo_digits.num_samples': 8, 'data.datasets.demo_advection.num_samples': 8,
    'data.datasets.demo_traffic.num_samples': 8, 'data.batch_size': 4, 'data.val_batch_size': 8,
    'trainer.max_epochs': 1, 'trainer.limit_train_batches': 3, 'trainer.enable_progress_bar': False,
    'evaluation.figures': False,
}


@pytest.mark.parametrize('model_type,method', [('incepu', 'multitask'), ('gsta', 'multitask'), ('tau', 'tau'),
                                               ('earthformer', 'multitask')])
def test_each_baseline_trains_jointly_through_the_shared_method(tmp_path, model_type, method):
    cfg = load_config(ROOT / 'configs/baselines/demo_tau.py', DEMO_TINY)
    cfg.method = dict(type='tau', alpha=0.1, tau=0.1) if method == 'tau' else dict(type=method)
    if model_type == 'earthformer':
        cfg.model = dict(type='Earthformer', **EARTHFORMER_TINY)
    else:
        cfg.model.model_type = model_type
    L.seed_everything(0)
    tasks = build_tasks(cfg)
    model = build_model(cfg, tasks)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = build_trainer(cfg, str(tmp_path / 'run'))
    method_module = build_method(cfg, model, tasks)
    trainer.fit(method_module, datamodule=build_datamodule(cfg, tasks, str(tmp_path / 'data')))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith(('translator.', 'core.')) for n in changed)
    assert trainer.global_step == 3
    assert set(trainer.logged_metrics) >= {'train/loss', 'val/loss'}
    if method == 'tau':
        assert 'train/differential_divergence' in trainer.logged_metrics


def test_tau_method_adds_the_weighted_divergence():
    cfg = load_config(ROOT / 'configs/baselines/demo_tau.py', {'method.alpha': 0.5})
    tasks = build_tasks(cfg)
    method = build_method(cfg, build_model(cfg, tasks), tasks)
    pred, target = torch.rand(2, 4, 2, 8, 8), torch.rand(2, 4, 2, 8, 8)
    extras = method.extra_loss({'y': target}, pred)
    torch.testing.assert_close(extras['differential_divergence'], 0.5 * differential_divergence(pred, target))


def test_demo_with_a_baseline_swapped_in_runs_end_to_end(tmp_path):
    options = [f'{k}={v}' for k, v in DEMO_TINY.items()]
    result = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '-c', str(ROOT / 'configs/baselines/demo_tau.py'),
                             '--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'),
                             '--cfg-options', *options], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'SimVP' in result.stdout and 'demo_traffic' in result.stdout and 'copy last frame' in result.stdout
    assert (tmp_path / 'work' / 'results.json').is_file()


def test_best_checkpoint_follows_the_copy_last_relative_score(tmp_path):
    """``val/score`` = mean over tasks of MSE / copy-last MSE on the validation split, and ``best.ckpt`` follows it."""
    cfg = load_config(ROOT / 'configs/baselines/demo_tau.py', DEMO_TINY)
    L.seed_everything(0)
    tasks = build_tasks(cfg)
    model = build_model(cfg, tasks)
    datamodule = build_datamodule(cfg, tasks, str(tmp_path / 'data'))
    trainer = build_trainer(cfg, str(tmp_path / 'run'))
    assert [c.monitor for c in trainer.checkpoint_callbacks if c.filename == 'best'] == ['val/score']
    logged = trainer.validate(build_method(cfg, model, tasks), datamodule=datamodule, verbose=False)[0]
    ratios = []
    model.eval()  # as validation ran it (TAU's blocks hold BatchNorm)
    with torch.no_grad():
        for spec in tasks:
            dataset = datamodule.build_split('val')[spec.name]
            x = torch.stack([dataset[i][0] for i in range(len(dataset))])
            y = torch.stack([dataset[i][1] for i in range(len(dataset))])
            mse = ((model(x, spec.name) - y) ** 2).mean().item()
            copy_last = ((x[:, -1:] - y) ** 2).mean().item()
            assert logged[f'val/loss_{spec.name}'] == pytest.approx(mse, rel=1e-4)
            ratios.append(mse / copy_last)
    assert logged['val/score'] == pytest.approx(sum(ratios) / len(ratios), rel=1e-4)
    assert logged['val/loss'] != pytest.approx(logged['val/score'], rel=1e-2)
