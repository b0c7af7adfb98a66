"""A model type and a training method defined here, outside the package, each by one decorated definition:
the config rules accept them, tools/train.py trains them and ``load_model`` / ``load_predictor`` load them,
as they do the built-in ones; an unregistered name is refused, naming it and listing the registered ones."""
import csv
from dataclasses import dataclass

import lightning as L
import pytest
import torch
from torch import nn

from openstl_unistd import load_model, load_predictor
from openstl_unistd.inference.checkpoint_io import load_checkpoint
from openstl_unistd.methods.multitask import MultiTaskTraining
from openstl_unistd.methods.options import TrainingOptions, options_of
from openstl_unistd.methods.registry import create_method, register_method, registered_methods
from openstl_unistd.models.base import MultiTaskModel
from openstl_unistd.models.registry import MODEL_TYPES, create_model, model_arguments, register_model
from openstl_unistd.tasks import resolve_tasks

from .tools import run


@register_model('TestScaledLastFrame')
class ScaledLastFrame(MultiTaskModel):
    """Every output frame is the last input frame times a learnt per-task, per-channel scale."""

    def __init__(self, tasks, init_scale: float = 1.0) -> None:
        super().__init__(tasks, decode='direct')
        self.scales = nn.ParameterDict({name: nn.Parameter(torch.full((spec.channels,), float(init_scale)))
                                        for name, spec in self.tasks.items()})

    def step(self, x: torch.Tensor, task: str) -> torch.Tensor:
        frames = self.task(task).output_frames
        return (x[:, -1:] * self.scales[task].view(1, 1, -1, 1, 1)).expand(-1, frames, -1, -1, -1)


@dataclass(frozen=True)
class L1Options:
    """The weight of the L1 term (the config's ``method=dict(type='test_l1', weight=...)``)."""

    weight: float = 0.5


class L1Training(MultiTaskTraining):
    """Adds ``weight · |pred − y|`` to the task loss."""

    def init_method(self, **options) -> None:
        self.l1 = options_of(L1Options, options, "config section 'method (test_l1)'")

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        return {'l1': self.l1.weight * (pred - batch['y']).abs().mean()}


@register_method('test_l1', options=L1Options, model_types=('TestScaledLastFrame',))
class L1Method(L1Training, L.LightningModule):
    def __init__(self, model: nn.Module, tasks, weight: float = L1Options.weight, **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_method(weight=weight)
        self.save_hyperparameters(ignore=['model', 'tasks'])


def write_config(tmp_path, model: str = "dict(type='TestScaledLastFrame', init_scale=0.5)",
                 method: str = "dict(type='test_l1', weight=0.25)"):
    config = tmp_path / 'registered.py'
    config.write_text(f"""tasks = ['demo_digits']
model = {model}
method = {method}
data = dict(batch_size=4, val_batch_size=4, num_workers=0, steps_per_epoch=3,
            datasets=dict(demo_digits=dict(num_samples=8)))
optim = dict(lr=0.05, warmup_epochs=0)
trainer = dict(max_epochs=1, accelerator='cpu', devices=1, enable_progress_bar=False, log_every_n_steps=1)
evaluation = dict(figures=False)
""")
    return config


def test_a_model_and_a_method_registered_in_a_test_file_train_through_tools_train_and_load(tmp_path, capsys):
    config, work = write_config(tmp_path), tmp_path / 'work'
    status, err = run('train', '-c', config, '--work-dir', work, '--data-root', tmp_path / 'data', capsys=capsys)
    assert status == 0, err

    with open(work / 'logs' / 'metrics.csv', newline='') as file:
        logged = [float(row['train/l1']) for row in csv.DictReader(file) if row.get('train/l1')]
    assert len(logged) == 3                                          # the registered method's loss, every step

    checkpoint = work / 'checkpoints' / 'last.ckpt'
    predictor = load_predictor(checkpoint)
    assert predictor.card.model == {'type': 'TestScaledLastFrame', 'init_scale': 0.5}
    assert predictor.card.method == {'type': 'test_l1', 'weight': 0.25}
    assert type(predictor.model) is ScaledLastFrame
    saved = load_checkpoint(checkpoint)['state_dict']['model.scales.demo_digits']
    torch.testing.assert_close(predictor.model.scales['demo_digits'].detach(), saved, rtol=0, atol=0)
    assert not torch.equal(saved, torch.full_like(saved, 0.5))      # it trained: the scale left its start

    model = load_model(checkpoint)
    assert type(model) is ScaledLastFrame and not model.training
    x = torch.rand(2, *predictor.task('demo_digits').input_shape)
    torch.testing.assert_close(model(x, 'demo_digits'), predictor.model(x, 'demo_digits'), rtol=0, atol=0)


def test_registered_definitions_are_what_create_model_and_create_method_build():
    tasks = resolve_tasks(['demo_digits'])
    model = create_model('TestScaledLastFrame', tasks, init_scale=2.0)
    assert MODEL_TYPES['TestScaledLastFrame'] is ScaledLastFrame and model_arguments('TestScaledLastFrame') == (
        'init_scale',)
    assert float(model.scales['demo_digits'].detach()[0]) == 2.0
    method = create_method('test_l1', model, tasks, weight=0.75, lr=0.1)
    assert type(method) is L1Method and method.l1 == L1Options(0.75) and method.options.lr == 0.1
    entry = registered_methods()['test_l1']
    assert entry.options == ('weight',) and entry.training == (L1Training,)


def test_a_second_definition_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match=r"model type 'UniSTD' is already registered to "
                                         r'openstl_unistd.models.unistd.UniSTD'):
        register_model('UniSTD')(ScaledLastFrame)
    with pytest.raises(ValueError, match=r"method 'test_l1' is already registered to tests.test_registry.L1Method"):
        register_method('test_l1')(type('Other', (L1Method,), {}))
    assert register_model('TestScaledLastFrame')(ScaledLastFrame) is ScaledLastFrame   # the same one again: fine


@pytest.mark.parametrize('option,message', [
    ("model.type='UniSDT'", "model type 'UniSDT' is not registered; registered model types: "),
    ("method='unistd_l1'", "method 'unistd_l1' is not registered; registered methods: "),
])
def test_an_unregistered_type_or_method_is_refused_naming_it_and_the_registered_ones(tmp_path, capsys, option,
                                                                                     message):
    status, err = run('train', '-c', write_config(tmp_path), '--work-dir', tmp_path / 'work', '--data-root',
                      tmp_path / 'data', '--cfg-options', option, capsys=capsys)
    registered = sorted(MODEL_TYPES) if option.startswith('model') else sorted(registered_methods())
    assert status == 2 and 'Traceback' not in err
    assert err == f'error: {message}{registered}\n'
    assert {'TestScaledLastFrame', 'UniSTD', 'SimVP', 'Earthformer'} <= set(MODEL_TYPES)
    assert {'test_l1', 'unistd', 'multitask', 'tau'} <= set(registered_methods())
    assert not (tmp_path / 'data').exists() and not (tmp_path / 'work').exists()


def test_a_method_refuses_a_model_type_it_does_not_train_and_an_option_it_does_not_take(tmp_path, capsys):
    status, err = run('train', '-c', write_config(tmp_path, model="dict(type='SimVP', hid_S=8)"), '--work-dir',
                      tmp_path / 'work', '--data-root', tmp_path / 'data', capsys=capsys)
    assert (status, err) == (2, "error: method 'test_l1' trains model types ['TestScaledLastFrame'], not 'SimVP'\n")
    status, err = run('train', '-c', write_config(tmp_path, method="dict(type='test_l1', wieght=1)"), '--work-dir',
                      tmp_path / 'work', '--data-root', tmp_path / 'data', capsys=capsys)
    assert (status, err) == (2, "error: config section 'method (test_l1)': unknown key(s) ['wieght']; valid keys: "
                                "['weight']\n")
    status, err = run('train', '-c', write_config(tmp_path, model="dict(type='TestScaledLastFrame', scale=2)"),
                      '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data', capsys=capsys)
    assert (status, err) == (2, "error: config section 'model' (ScaledLastFrame): unknown key(s) ['scale']; valid "
                                "keys: ['init_scale']\n")


def test_the_openstl_plugin_reads_its_methods_keys_from_the_registries(monkeypatch):
    from openstl_unistd.methods.registry import check_method
    from openstl_unistd.openstl_plugin import (OPENSTL_METHODS, OpenSTLMethod, method_keys, model_option_names,
                                               plugin_model_options)

    for plugin in OPENSTL_METHODS.values():          # every -m name is a registered method on a type it trains
        check_method(plugin.method).check_model_type(plugin.model_type)
    assert method_keys('multitask_tau') == ('alpha', 'tau') and method_keys('unistd') == ('rank_search',)
    monkeypatch.setitem(OPENSTL_METHODS, 'test_l1', OpenSTLMethod('Test_L1', 'test_l1', 'TestScaledLastFrame'))
    assert method_keys('test_l1') == ('weight',) and model_option_names('test_l1') == ('init_scale',)
    assert plugin_model_options('test_l1', {'init_scale': 2.0, 'weight': 1.0, 'lr': 0.1}) == {
        'type': 'TestScaledLastFrame', 'init_scale': 2.0}
