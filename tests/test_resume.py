"""Resume is exact from every checkpoint a run writes: mid-epoch, the last batch before validation, epoch end.

A run of two epochs (rank search in the first, frozen ranks in the second) is interrupted by an
exception at one point, then resumed from its ``last.ckpt``; weights, ranks, losses and task
sequence must equal the uninterrupted run's, and the CSV log must hold every step once.
"""
import csv
import json
import os
import signal
import subprocess
import sys

import lightning as L
import pytest
import torch

from openstl_unistd.modules.ra_moe import ra_moe_modules
from openstl_unistd.engine.experiment import train
from .test_training import Recorder, fit, tiny_config
from .tools import DEMO, ROOT, SMALL, run

SHORT = {
    'data.steps_per_epoch': 3, 'data.datasets.demo_digits.num_samples': 8,
    'data.datasets.demo_advection.num_samples': 8, 'data.datasets.demo_traffic.num_samples': 8,
    'trainer.max_epochs': 2, 'rank_search.epochs': 1,
}


class Crash(L.Callback):
    """Raises (a simulated crash) at one point of the run: ``('batch', epoch, index)`` before a batch,
    ``('validation', epoch)`` before the epoch's validation, ``('epoch', epoch)`` before an epoch starts."""

    def __init__(self, point):
        self.point = point

    def _crash(self, *where):
        if tuple(where) == tuple(self.point):
            raise RuntimeError(f'simulated crash at {where}')

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._crash('batch', trainer.current_epoch, batch_idx)

    def on_validation_start(self, trainer, module):
        if not trainer.sanity_checking:
            self._crash('validation', trainer.current_epoch)

    def on_train_epoch_start(self, trainer, module):
        self._crash('epoch', trainer.current_epoch)


class SaveOnLastBatch(L.Callback):
    """Saves ``raw.ckpt`` on the last batch of epoch 0, before validation, as a plain step checkpoint would."""

    def __init__(self, path):
        self.path = path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx + 1 == trainer.num_training_batches:
            trainer.save_checkpoint(self.path)


def parameters(method):
    return {name: value.detach().clone() for name, value in method.model.state_dict().items()}


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    recorder = Recorder()
    method, _ = fit(tiny_config(**SHORT), root / 'whole', root / 'data', recorder)
    return root, recorder, parameters(method)


def assert_same_run(resumed, method, uninterrupted, crashed):
    _, whole, weights = uninterrupted
    combined = [loss for loss in crashed.losses if loss not in resumed.losses] + resumed.losses
    assert [(e, t) for e, t, _ in combined] == [(e, t) for e, t, _ in whole.losses]       # same batches
    torch.testing.assert_close(torch.tensor([v for *_, v in combined]), torch.tensor([v for *_, v in whole.losses]),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(resumed.ranks[-1], whole.ranks[-1], rtol=0, atol=0)           # same ranks, frozen
    assert all(m.frozen for m in ra_moe_modules(method.model))
    for name, value in parameters(method).items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=1e-6, msg=name)


def csv_steps(work_dir):
    with open(work_dir / 'logs' / 'metrics.csv', newline='') as file:
        rows = list(csv.DictReader(file))
    train = [int(row['step']) for row in rows if row.get('train/loss')]
    validated = [int(row['epoch']) for row in rows if row.get('val/loss')]
    return train, validated


@pytest.mark.parametrize('point,every_n', [
    (('batch', 0, 2), 1),          # mid-epoch: last.ckpt of batch 1, batch 2 (the epoch's last) is replayed
    (('validation', 0), 1),        # after the last batch of epoch 0, before its validation
    (('epoch', 1), None),          # after epoch 0's end (validation done), before epoch 1 starts
], ids=['mid-epoch', 'last-batch-before-validation', 'end-of-epoch'])
def test_resume_from_every_checkpoint_reproduces_the_uninterrupted_run(tmp_path, uninterrupted, point, every_n):
    root = uninterrupted[0]
    options = {**SHORT, 'trainer.checkpoint_every_n_steps': every_n}
    crashed = Recorder()
    with pytest.raises(RuntimeError, match='simulated crash'):
        fit(tiny_config(**options), tmp_path / 'run', root / 'data', [crashed, Crash(point)])
    checkpoint = tmp_path / 'run' / 'checkpoints' / 'last.ckpt'
    assert checkpoint.is_file() and not list(checkpoint.parent.glob('.*.tmp'))

    resumed = Recorder()
    method, trainer = fit(tiny_config(**options), tmp_path / 'run', root / 'data', resumed, resume=str(checkpoint))
    assert trainer.current_epoch == 2
    assert_same_run(resumed, method, uninterrupted, crashed)
    train_steps, validated = csv_steps(tmp_path / 'run')
    assert train_steps == list(range(6)) and validated == [0, 1]     # rows before the crash kept, none twice


def test_a_checkpoint_from_the_last_batch_before_validation_resumes_without_an_extra_search_epoch(
        tmp_path, uninterrupted):
    """Such a file (a plain step checkpoint) makes Lightning skip the next ``on_train_epoch_start``;
    the ranks must still freeze when epoch 1 begins, and the user is told that epoch 0 is not validated."""
    root = uninterrupted[0]
    raw = tmp_path / 'raw.ckpt'
    crashed = Recorder()
    with pytest.raises(RuntimeError, match='simulated crash'):
        fit(tiny_config(**SHORT), tmp_path / 'run', root / 'data', [crashed, SaveOnLastBatch(raw), Crash(('epoch', 1))])
    resumed = Recorder()
    with pytest.warns(UserWarning, match='last batch of epoch 0, before its validation'):
        method, _ = fit(tiny_config(**SHORT), tmp_path / 'run', root / 'data', resumed, resume=str(raw))
    assert [e for e, *_ in resumed.losses] == [1, 1, 1]
    assert_same_run(resumed, method, uninterrupted, crashed)


def test_without_validation_last_is_written_and_tested_in_place_of_best(tmp_path, uninterrupted, capsys):
    root = uninterrupted[0]
    cfg = tiny_config(**{**SHORT, 'trainer.limit_val_batches': 0, 'trainer.max_epochs': 1})
    results = train(cfg, tmp_path / 'run', data_root=str(root / 'data'))
    assert (tmp_path / 'run' / 'checkpoints' / 'last.ckpt').is_file()
    assert not (tmp_path / 'run' / 'checkpoints' / 'best.ckpt').exists()
    assert 'no best.ckpt (validation never ran: disabled or empty); testing' in capsys.readouterr().err
    assert set(results) == {'demo_digits', 'demo_advection', 'demo_traffic'}
    assert (tmp_path / 'run' / 'results.json').is_file()


def test_a_kill_between_the_best_and_the_last_checkpoint_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    """SIGKILL right after the first checkpoint file written at the end of the final epoch: ``--resume`` must
    test the checkpoint that the uninterrupted run tests, never a ``best.ckpt`` an epoch behind."""
    options = [*SMALL, 'trainer.max_epochs=2', 'rank_search.epochs=1', 'optim.warmup_epochs=0', 'optim.lr=3e-3']
    data = tmp_path / 'data'
    status, err = run('train', '-c', DEMO, '--work-dir', tmp_path / 'whole', '--data-root', data, *options,
                      capsys=capsys)
    assert status == 0, err
    whole = json.loads((tmp_path / 'whole' / 'results.json').read_text())
    assert whole['checkpoint']['epoch'] == 1          # the final epoch is the best: best.ckpt is saved at its end

    killed = subprocess.run([sys.executable, str(ROOT / 'tests' / 'killed_run.py'), '1', '-c', DEMO, '--work-dir',
                             str(tmp_path / 'run'), '--data-root', str(data), *options],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / 'run' / 'results.json').exists()

    status, err = run('train', '-c', DEMO, '--work-dir', tmp_path / 'run', '--data-root', data, '--resume', *options,
                      capsys=capsys)
    assert status == 0, err
    resumed = json.loads((tmp_path / 'run' / 'results.json').read_text())
    for task, scores in whole['results'].items():
        assert resumed['results'][task] == pytest.approx(scores, rel=1e-5), task
    assert resumed['checkpoint']['path'] == str((tmp_path / 'run' / 'checkpoints' / 'best.ckpt').resolve())
    assert {k: resumed['checkpoint'][k] for k in ('epoch', 'global_step')} == {
        k: whole['checkpoint'][k] for k in ('epoch', 'global_step')}
