"""Checkpoints load without executing code and name what does not fit; a run never reports nothing."""
import hashlib
import json
import os
import shutil

import lightning
import pytest
import torch

from openstl_unistd.inference.checkpoint_io import load_checkpoint
from openstl_unistd.engine.config import build_model, build_tasks

from .test_training import Recorder, fit, tiny_config
from .tools import DEMO, SMALL, run

SHORT = {'data.steps_per_epoch': 2, 'trainer.max_epochs': 1, 'data.datasets.demo_digits.num_samples': 4,
         'data.datasets.demo_advection.num_samples': 4, 'data.datasets.demo_traffic.num_samples': 4,
         'data.batch_size': 2}
"""Matches ``tools.SMALL`` (depth 1, hidden 8 come from ``TINY``)."""


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('checkpoints')
    fit(tiny_config(**SHORT), root / 'run', root / 'data', Recorder())
    return root, root / 'run' / 'checkpoints' / 'last.ckpt'


class Payload:
    """Unpickling this runs code (it creates ``marker``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_a_crafted_pickle_is_refused_even_when_unsafe_loading_is_forced(tmp_path, trained, monkeypatch, capsys):
    root, checkpoint = trained
    crafted = tmp_path / 'crafted.ckpt'
    state = torch.load(checkpoint, weights_only=True)
    state['hyper_parameters'] = {'lr': Payload(tmp_path / 'executed')}
    torch.save(state, crafted)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(ValueError, match=r"checkpoint '.*crafted.ckpt' refused: it holds Python objects beyond"):
        load_checkpoint(crafted)
    status, err = run('test', '-c', DEMO, '--ckpt', crafted, '--work-dir', tmp_path / 'test',
                      '--data-root', root / 'data', *SMALL, capsys=capsys)
    assert status == 2 and 'refused' in err and 'Traceback' not in err
    status, err = run('train', '-c', DEMO, '--resume', crafted, '--work-dir', tmp_path / 'train',
                      '--data-root', root / 'data', *SMALL, capsys=capsys)
    assert status == 2 and 'refused' in err
    assert not (tmp_path / 'executed').exists()
    assert os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] == '1'       # restored after each load


def test_our_checkpoints_load_with_weights_only(trained):
    state = load_checkpoint(trained[1])
    assert state['tasks'] == ['demo_digits', 'demo_advection', 'demo_traffic'] and 'MultiTaskDataModule' in state


@pytest.mark.parametrize('recorded', [True, False], ids=['recorded-tasks', 'older-file'])
def test_a_checkpoint_of_other_tasks_names_them_in_one_line(tmp_path, trained, capsys, recorded):
    root, _ = trained
    cfg = tiny_config(**{**SHORT, 'tasks': ['demo_digits', 'demo_traffic']})
    model = build_model(cfg, build_tasks(cfg))
    state = {'state_dict': {f'model.{k}': v for k, v in model.state_dict().items()},
             'pytorch-lightning_version': lightning.__version__}
    if recorded:
        state['tasks'] = ['demo_digits', 'demo_traffic']
    torch.save(state, tmp_path / 'pair.ckpt')
    status, err = run('test', '-c', DEMO, '--ckpt', tmp_path / 'pair.ckpt', '--work-dir', tmp_path / 'test',
                      '--data-root', root / 'data', *SMALL, capsys=capsys)
    assert status == 2 and 'Traceback' not in err
    (line,) = [line for line in err.splitlines() if line.startswith('error: ')]
    assert f"checkpoint '{tmp_path / 'pair.ckpt'}' does not fit the config" in line
    assert "trained on tasks ['demo_digits', 'demo_traffic']" in line
    assert "not in the checkpoint: ['demo_advection']" in line


def test_a_test_without_any_batch_writes_no_results_and_fails(tmp_path, trained, capsys):
    root, checkpoint = trained
    status, err = run('test', '-c', DEMO, '--ckpt', checkpoint, '--work-dir', tmp_path / 'test', '--data-root',
                      root / 'data', *SMALL, 'trainer.limit_test_batches=0', capsys=capsys)
    assert status == 2 and "no test results for task(s) ['demo_digits', 'demo_advection', 'demo_traffic']" in err
    assert not (tmp_path / 'test' / 'results.json').exists()


def test_results_name_the_checkpoint_they_scored(tmp_path, trained, capsys):
    root, checkpoint = trained
    status, err = run('test', '-c', DEMO, '--ckpt', checkpoint, '--work-dir', tmp_path / 'test', '--data-root',
                      root / 'data', *SMALL, capsys=capsys)
    assert status == 0, err
    state = load_checkpoint(checkpoint)
    results = json.loads((tmp_path / 'test' / 'results.json').read_text())
    assert results['checkpoint'] == {'path': str(checkpoint.resolve()), 'epoch': state['epoch'],
                                     'global_step': state['global_step'],
                                     'sha256': hashlib.sha256(checkpoint.read_bytes()).hexdigest()}


def test_a_failed_test_leaves_no_results_json_of_an_earlier_one(tmp_path, trained, capsys):
    root, checkpoint = trained
    work_dir = tmp_path / 'test'
    arguments = ['-c', DEMO, '--ckpt', checkpoint, '--work-dir', work_dir, '--data-root', root / 'data', *SMALL]
    assert run('test', *arguments, capsys=capsys)[0] == 0
    earlier = (work_dir / 'results.json').read_text()
    status, err = run('test', *arguments, 'trainer.limit_test_batches=0', capsys=capsys)
    assert status == 2 and 'no test results' in err
    assert not (work_dir / 'results.json').exists()
    assert (work_dir / 'results.previous.json').read_text() == earlier          # kept, under a name that says so


def test_extending_a_finished_run_without_testing_retires_its_results(tmp_path, trained, capsys):
    root, _ = trained
    work_dir = tmp_path / 'run'
    shutil.copytree(root / 'run', work_dir)
    arguments = ['-c', DEMO, '--work-dir', work_dir, '--data-root', root / 'data', *SMALL]
    status, err = run('test', *arguments, '--ckpt', work_dir / 'checkpoints' / 'last.ckpt', capsys=capsys)
    assert status == 0, err
    finished = json.loads((work_dir / 'results.json').read_text())
    assert finished['checkpoint']['epoch'] == 0
    status, err = run('train', *arguments, 'trainer.max_epochs=2', '--resume', '--no-test', capsys=capsys)
    assert status == 0, err
    assert load_checkpoint(work_dir / 'checkpoints' / 'last.ckpt')['epoch'] == 1     # the run went on
    assert not (work_dir / 'results.json').exists()
    assert json.loads((work_dir / 'results.previous.json').read_text()) == finished
