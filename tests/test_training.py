"""Joint training end to end on generated data with a tiny backbone: rank search, resume, tools."""
import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from openstl_unistd.modules.ra_moe import initial_total_rank, ra_moe_modules, total_rank
from openstl_unistd.engine.config import build_datamodule, build_method, build_model, build_tasks, build_trainer, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    'model.backbone_kwargs.depth': 1,
    'model.hidden_channels': 8,
    'data.datasets.demo_digits.num_samples': 16,
    'data.datasets.demo_advection.num_samples': 16,
    'data.datasets.demo_traffic.num_samples': 16,
    'data.batch_size': 4,
    'data.val_batch_size': 8,
    'trainer.max_epochs': 2,
    'trainer.enable_progress_bar': False,
    'trainer.log_every_n_steps': 1,
    'rank_search.epochs': 1,
    'optim.warmup_epochs': 0,
    'optim.lr': 3e-3,
}


def tiny_config(**extra):
    return load_config(ROOT / 'configs/unistd/demo.py', {**TINY, **extra})


class Recorder(L.Callback):
    """Training losses per step, ranks at the end of each epoch, and an optional stop after an epoch."""

    def __init__(self, stop_after_epoch=None):
        self.losses, self.ranks, self.frozen = [], [], []
        self.stop_after_epoch = stop_after_epoch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append((trainer.current_epoch, batch['task'], float(outputs['loss'])))

    def on_train_epoch_end(self, trainer, module):
        adapters = ra_moe_modules(module.model)
        self.ranks.append(torch.cat([m.rank.detach().flatten().clone() for m in adapters]))
        self.frozen.append([m.frozen for m in adapters])
        if trainer.current_epoch == self.stop_after_epoch:
            trainer.should_stop = True


def fit(cfg, work_dir, data_root, recorder, resume=None):
    L.seed_everything(0)
    tasks = build_tasks(cfg)
    datamodule = build_datamodule(cfg, tasks, str(data_root))
    model = build_model(cfg, tasks)
    method = build_method(cfg, model, tasks, save_dir=str(work_dir))
    trainer = build_trainer(cfg, str(work_dir), resuming=resume is not None)
    trainer.callbacks[:0] = recorder if isinstance(recorder, list) else [recorder]
    trainer.fit(method, datamodule=datamodule, ckpt_path=resume)
    return method, trainer


def test_ranks_move_during_search_and_are_frozen_integers_after(tmp_path):
    recorder = Recorder()
    method, _ = fit(tiny_config(), tmp_path / 'run', tmp_path / 'data', recorder)
    searched = recorder.ranks[0]
    assert float(searched.max() - searched.min()) > 0.01             # experts moved apart (not in lockstep)
    assert float(searched.sum()) == pytest.approx(method.rank_budget, abs=1e-3)   # on the budget throughout
    assert all(not f for f in recorder.frozen[0])                     # still searching after epoch 0
    after = recorder.ranks[1]
    assert torch.equal(after, after.round()) and all(recorder.frozen[1])
    assert all(not m.rank.requires_grad for m in ra_moe_modules(method.model))
    assert ((after >= 1) & (after <= 8)).all() and float(after.sum()) <= method.rank_budget


@pytest.mark.parametrize('formulation', ['paper', 'marginal_gain'])
def test_budget_pulls_the_total_rank_to_its_target(tmp_path, formulation):
    cfg = tiny_config(**{'trainer.max_epochs': 1, 'rank_search.epochs': 1})
    model = build_model(cfg, build_tasks(cfg))
    target = initial_total_rank(model) - 30.0
    recorder = Recorder()
    method, _ = fit(tiny_config(**{'trainer.max_epochs': 1, 'rank_search.budget': target,
                                   'rank_search.formulation': formulation}),
                    tmp_path / 'run', tmp_path / 'data', recorder)
    distance_before = abs(initial_total_rank(model) - target)
    distance_after = abs(float(total_rank(method.model)) - target)
    assert distance_after < (distance_before / 2 if formulation == 'paper' else 1e-3)   # a constraint, not a pull


def test_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path):
    data = tmp_path / 'data'
    whole = Recorder()
    fit(tiny_config(), tmp_path / 'whole', data, whole)

    first = Recorder(stop_after_epoch=0)
    fit(tiny_config(), tmp_path / 'split', data, first)
    checkpoint = tmp_path / 'split' / 'checkpoints' / 'last.ckpt'
    assert checkpoint.is_file() and not list(checkpoint.parent.glob('.*.tmp'))
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert state['epoch'] == 0 and 'MultiTaskDataModule' in state

    second = Recorder()
    method, trainer = fit(tiny_config(), tmp_path / 'split', data, second, resume=str(checkpoint))
    assert trainer.current_epoch == 2
    resumed = [loss for loss in second.losses if loss[0] == 1]
    uninterrupted = [loss for loss in whole.losses if loss[0] == 1]
    assert [t for _, t, _ in resumed] == [t for _, t, _ in uninterrupted]   # same sampler sequence
    torch.testing.assert_close(torch.tensor([v for *_, v in resumed]),
                               torch.tensor([v for *_, v in uninterrupted]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(second.ranks[-1], whole.ranks[-1], rtol=0, atol=0)  # same ranks and phase
    assert all(second.frozen[-1])


def test_train_tool_trains_tests_and_writes_the_work_dir(tmp_path):
    work_dir = tmp_path / 'work'
    # two epochs: the search (1), then the ranks freeze at the next epoch's first batch
    options = [f'{k}={v}' for k, v in {**TINY, 'data.steps_per_epoch': 3}.items()]
    command = [sys.executable, str(ROOT / 'tools/train.py'), '-c', str(ROOT / 'configs/unistd/demo.py'),
               '--work-dir', str(work_dir), '--data-root', str(tmp_path / 'data'), '--seed', '3',
               '--cfg-options', *options]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout[result.stdout.index('task '):]
    for task in ('demo_digits', 'demo_advection', 'demo_traffic'):
        assert task in table
    assert 'copy last frame' in table and 'psnr' in table and 'ssim' in table
    assert 'note: the backbone (vit_tiny_patch16_224) is randomly initialized, not pretrained, and frozen' in table
    assert 'configs/unistd/demo_clip.py' in table
    for path in ('config.py', 'checkpoints/last.ckpt', 'checkpoints/best.ckpt', 'logs/metrics.csv',
                 'results.json', 'figures/demo_digits.png', 'figures/ranks.png'):
        assert (work_dir / path).is_file(), path
    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results['results']) == {'demo_digits', 'demo_advection', 'demo_traffic'}
    ranks = results['ranks']                                           # searched, then frozen within the budget
    assert ranks['frozen'] and ranks['total'] <= ranks['budget'] == 4.5 * 22
    assert len(ranks['mean_per_block']) == 1 and set(ranks['mean_per_block'][0]) == {'Q', 'K', 'V', 'Proj', 'Temporal'}
    assert sum(sum(map(sum, values)) for values in ranks['experts'].values()) == ranks['total']
    assert 'rank/V_0' in (work_dir / 'logs/metrics.csv').read_text().splitlines()[0]
    assert 'seed = 3' in (work_dir / 'config.py').read_text()
    logged = (work_dir / 'logs/metrics.csv').read_text().splitlines()[0]
    assert 'train/loss_demo_digits' in logged and 'val/loss' in logged

    test = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'), '-c', str(ROOT / 'configs/unistd/demo.py'),
                           '--ckpt', str(work_dir / 'checkpoints/best.ckpt'), '--work-dir', str(tmp_path / 'test'),
                           '--data-root', str(tmp_path / 'data'), '--save-preds', '3', '--cfg-options', *options],
                          capture_output=True, text=True, cwd=ROOT)
    assert test.returncode == 0, test.stderr[-3000:]
    saved = tmp_path / 'test' / 'saved' / 'demo_traffic'
    import numpy as np
    preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
    assert preds.shape == trues.shape == (3, 4, 2, 32, 32)
    tested = json.loads((tmp_path / 'test' / 'results.json').read_text())['results']
    assert tested['demo_traffic']['mse'] == pytest.approx(results['results']['demo_traffic']['mse'], rel=1e-5)


def test_missing_datasets_stop_the_paper_run_at_once_with_one_message(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '-c', str(ROOT / 'configs/unistd/multi10.py'),
                             '--data-root', str(tmp_path), '--work-dir', str(tmp_path / 'work'),
                             '--cfg-options', 'model.pretrained=False'],  # the weights file is checked before the data
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    message = result.stderr
    assert message.startswith('error: ') and 'missing under data_root=' in message
    for task, script in [('taxibj', 'download_taxibj.sh'), ('mmnist', 'download_mmnist.sh'), ('kth', 'download_kth.sh'),
                         ('kitti', 'download_kitti.sh'), ('human', 'download_human.sh'), ('bair', 'download_bair.sh'),
                         ('cityscapes', 'download_cityscapes.sh'), ('traffic4cast', 'download_traffic4cast.sh'),
                         ('sevir', 'download_sevir.sh'), ('enso', 'download_enso.sh')]:
        assert f'{task}: ' in message and f'tools/prepare_data/{script}' in message, task
    assert str(tmp_path) in message


@pytest.mark.parametrize('options,expected', [
    (['tasks=[demo_digits,demo_foo]'], "unknown task 'demo_foo'"),
    (['optim.learning_rate=1'], "config section 'optim': unknown key(s) ['learning_rate']"),
    (['trainr.max_epochs=1'], "unknown key(s) ['trainr.max_epochs']; they do not exist"),
])
def test_bad_options_are_named(tmp_path, options, expected):
    result = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '-c', str(ROOT / 'configs/unistd/demo.py'),
                             '--work-dir', str(tmp_path), '--data-root', str(tmp_path), '--cfg-options', *options],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and expected in result.stderr and 'Traceback' not in result.stderr


def test_bf16_mixed_precision_trains_in_bf16_with_float32_weights_on_cpu(tmp_path):
    """Every Linear of the model (backbone, adapters' routers, task ends) runs in bf16 during training, the
    weights stay float32 and every step's loss is finite. Break caught: ``trainer.precision`` not reaching
    Lightning's ``Trainer`` (dropped in ``build_trainer``): training then runs in float32, and finite
    losses alone would not notice."""

    class LinearDtypes(L.Callback):
        def __init__(self):
            self.dtypes, self.handles = set(), []

        def on_train_start(self, trainer, module):
            for layer in module.model.modules():
                if isinstance(layer, torch.nn.Linear):
                    self.handles.append(layer.register_forward_hook(lambda _, __, out: self.dtypes.add(out.dtype)))

        def on_train_end(self, trainer, module):
            for handle in self.handles:
                handle.remove()

    recorder, dtypes = Recorder(), LinearDtypes()
    method, trainer = fit(tiny_config(**{'trainer.precision': 'bf16-mixed', 'trainer.max_epochs': 1}),
                          tmp_path / 'run', tmp_path / 'data', [recorder, dtypes])
    assert trainer.precision == 'bf16-mixed'
    assert dtypes.handles and dtypes.dtypes == {torch.bfloat16}
    assert {p.dtype for p in method.model.parameters()} == {torch.float32}
    assert len(recorder.losses) == trainer.fit_loop.epoch_loop.batch_progress.total.completed > 0  # one per batch
    assert all(math.isfinite(loss) for *_, loss in recorder.losses)
