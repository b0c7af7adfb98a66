"""Bad values and a diverging run stop with one message naming the key, the file or the task and step."""
import hashlib

import lightning as L
import pytest
import torch

from openstl_unistd.methods.multitask import NonFiniteLossError
from openstl_unistd.inference.checkpoint_io import load_checkpoint

from .test_training import Recorder, fit, tiny_config
from .tools import DEMO, SMALL, run


@pytest.mark.parametrize('option,expected', [
    ('optim.lr=abc', "config key optim.lr: expected a number > 0, got 'abc' (str)"),
    ('data.steps_per_epoch=0', 'config key data.steps_per_epoch: expected an integer ≥ 1 or None, got 0 (int)'),
    ('trainer.max_epochs=0', 'config key trainer.max_epochs: expected an integer ≥ 1, got 0 (int)'),
    ('data.batch_size=2.5', 'config key data.batch_size: expected an integer ≥ 1, got 2.5 (float)'),
])
def test_bad_values_name_the_key_expected_and_actual(tmp_path, capsys, option, expected):
    status, err = run('train', '-c', DEMO, '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data',
                      *SMALL, option, capsys=capsys)
    assert status == 2 and f'error: {expected}' in err and 'Traceback' not in err
    assert not (tmp_path / 'data').exists()


def test_an_unknown_section_in_a_config_file_is_named_with_the_valid_ones(tmp_path, capsys):
    config = tmp_path / 'typo.py'
    config.write_text(f'_base_ = [{DEMO!r}]\ntrainr = dict(max_epochs=1)\n')
    status, err = run('train', '-c', config, '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data',
                      capsys=capsys)
    assert status == 2 and 'Traceback' not in err
    assert f"config in {config}: unknown key(s) ['trainr']; valid sections and top-level keys: " in err
    assert "'trainer'" in err and "'optim'" in err


class Poison(L.Callback):
    """Puts a NaN into the input of batch ``index`` of epoch 0, after noting the checkpoint's bytes."""

    def __init__(self, index, checkpoint):
        self.index, self.checkpoint, self.digest = index, checkpoint, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.index:
            self.digest = hashlib.sha256(self.checkpoint.read_bytes()).hexdigest()
            batch['x'][0, 0, 0, 0, 0] = float('nan')
            self.task = batch['task']


def test_a_non_finite_loss_stops_naming_task_and_step_and_keeps_the_good_checkpoint(tmp_path):
    work_dir = tmp_path / 'run'
    checkpoint = work_dir / 'checkpoints' / 'last.ckpt'
    poison = Poison(2, checkpoint)
    options = {'data.steps_per_epoch': 4, 'trainer.max_epochs': 1, 'trainer.checkpoint_every_n_steps': 1}
    with pytest.raises(NonFiniteLossError) as error:
        method, _ = fit(tiny_config(**options), work_dir, tmp_path / 'data', [Recorder(), poison])
    message = str(error.value)
    assert f"non-finite training loss on task {poison.task!r} at epoch 0, batch 2 of the epoch" in message
    assert 'task loss = nan' in message and 'stopped before this step' in message
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == poison.digest       # not overwritten
    state = load_checkpoint(checkpoint)['state_dict']
    assert all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point())
