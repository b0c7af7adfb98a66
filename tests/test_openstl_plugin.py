"""The OpenSTL plug-in, in this process: without OpenSTL, a clear ImportError and a launcher that needs
none; with it (``make test-openstl``), registration, one SSIM convention, and every option of an OpenSTL
config reaching our model or refused by name. OpenSTL's own tools run in tests/test_openstl_tools.py.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from openstl_unistd.openstl_train import CONFIGS, batch_limit, find_train_script, main, openstl_arguments
from tests.with_openstl import needs_openstl

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_package_never_imports_openstl():
    code = ('import sys, openstl_unistd, openstl_unistd.models, openstl_unistd.datasets.datamodule, '
            'openstl_unistd.engine.experiment, openstl_unistd.openstl_plugin; '
            'print("openstl" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == 'False', result.stderr


def test_register_without_openstl_says_how_to_install_it():
    code = ('import sys; sys.modules["openstl"] = None\n'
            'import openstl_unistd\n'
            'try:\n    openstl_unistd.register()\n'
            'except ImportError as error:\n    print("ImportError:", error)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    message = result.stdout
    assert message.startswith('ImportError: OpenSTL is not installed')
    assert 'git clone https://github.com/chengtan9907/OpenSTL' in message and 'timm<=1.0.11' in message
    assert 'unrelated STL-mesh' in message


def test_our_methods_get_our_config_when_none_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert openstl_arguments(['-d', 'multi10', '-m', 'unistd']) == ['-d', 'multi10', '-m', 'unistd', '-c',
                                                                     str(CONFIGS / 'unistd.py')]
    assert openstl_arguments(['-d', 'taxibj', '-m', 'simvp']) == ['-d', 'taxibj', '-m', 'simvp']
    assert openstl_arguments(['-m', 'unistd', '-c', 'mine.py']) == ['-m', 'unistd', '-c', 'mine.py']
    for name in ('unistd', 'multitask_simvp', 'multitask_tau', 'multitask_earthformer'):
        assert (CONFIGS / f'{name}.py').is_file()


def test_our_methods_take_both_spellings_as_openstl_methods_do():
    import argparse

    from openstl_unistd.openstl_plugin import make_create_parser

    def openstl_like_parser():  # OpenSTL's closed choices (create_parser lists 'SimVP' and 'simvp')
        parser = argparse.ArgumentParser()
        parser.add_argument('--method', '-m', default='SimVP', choices=['SimVP', 'simvp'])
        parser.add_argument('--dataname', '-d', default='mmnist', choices=['mmnist'])
        return parser

    create_parser = make_create_parser(openstl_like_parser)
    for spelling in ('unistd', 'UniSTD', 'multitask_simvp', 'MultiTask_SimVP', 'multitask_tau', 'MultiTask_TAU',
                     'multitask_earthformer', 'MultiTask_Earthformer', 'SimVP'):
        assert create_parser().parse_args(['-d', 'multi_demo', '-m', spelling]).method == spelling
    with pytest.raises(SystemExit):
        create_parser().parse_args(['-m', 'UNISTD'])
    assert openstl_arguments(['-d', 'multi10', '-m', 'UniSTD'])[-2:] == ['-c', str(CONFIGS / 'unistd.py')]


def test_a_missing_openstl_clone_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'openstl', None)  # no installed clone to fall back on
    monkeypatch.setenv('OPENSTL_ROOT', str(tmp_path / 'env'))
    with pytest.raises(FileNotFoundError, match=r"OpenSTL's tools/train.py not found \(looked at: .*cli/tools/train.py"):
        find_train_script(str(tmp_path / 'cli'))


def test_the_launcher_runs_openstl_test_script_on_the_best_checkpoint(tmp_path, monkeypatch):
    import openstl_unistd

    clone = tmp_path / 'OpenSTL'
    (clone / 'tools').mkdir(parents=True)
    for script in ('train', 'test'):  # stand-ins for OpenSTL's scripts: record how they were called
        (clone / 'tools' / f'{script}.py').write_text(
            f"import json, sys\nopen('{script}.json', 'w').write(json.dumps(sys.argv[1:]))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(openstl_unistd, 'register', lambda: None)
    monkeypatch.setattr(sys, 'argv', sys.argv[:])
    main(['--openstl-root', str(clone), '--openstl-script', 'test', '-d', 'multi_demo', '-m', 'UniSTD',
          '--ex_name', 'demo'])
    assert json.loads((tmp_path / 'test.json').read_text()) == [
        '-d', 'multi_demo', '-m', 'UniSTD', '--ex_name', 'demo', '-c', str(CONFIGS / 'unistd.py'), '--test']
    main(['--openstl-root', str(clone), '-d', 'multi_demo', '-m', 'unistd', '-c', 'mine.py'])
    assert json.loads((tmp_path / 'train.json').read_text()) == ['-d', 'multi_demo', '-m', 'unistd', '-c', 'mine.py']
    monkeypatch.setitem(sys.modules, 'openstl', None)
    monkeypatch.delenv('OPENSTL_ROOT', raising=False)
    with pytest.raises(FileNotFoundError, match=r"OpenSTL's tools/test.py not found"):
        find_train_script(str(tmp_path / 'elsewhere'), 'test')


@needs_openstl
def test_register_is_idempotent_and_keeps_openstl_as_it_was():
    import openstl.datasets
    import openstl.methods
    import openstl.utils

    import openstl_unistd

    before = dict(openstl.methods.method_maps)
    openstl_unistd.register()
    openstl_unistd.register()
    maps = openstl.methods.method_maps
    assert all(maps[name] is cls for name, cls in before.items())
    assert {'unistd', 'multitask_simvp', 'multitask_tau', 'multitask_earthformer'} <= set(maps)
    assert openstl.datasets.dataset_parameters['sevir']['in_shape'] == [13, 1, 384, 384]
    assert openstl.datasets.dataset_parameters['multi10']['tasks'][0] == 'taxibj'
    assert openstl.datasets.load_data.wraps_openstl.__module__ == 'openstl.datasets.dataloader'
    args = openstl.utils.create_parser().parse_args(['-d', 'multi_demo', '-m', 'unistd'])
    assert (args.dataname, args.method) == ('multi_demo', 'unistd')
    assert openstl.utils.create_parser().parse_args(['-d', 'kth', '-m', 'SimVP']).method == 'SimVP'


def test_single_openstl_tasks_take_openstl_shapes_and_our_depth():
    from openstl_unistd.openstl_plugin import tasks_for

    (kth,) = tasks_for('kth', dict(in_shape=[10, 1, 128, 128], pre_seq_length=10, aft_seq_length=20,
                                   metrics=['mse', 'mae', 'ssim', 'psnr', 'lpips']))
    assert (kth.input_frames, kth.output_frames, kth.encoder_depth) == (10, 20, 3)
    assert 'lpips' not in kth.metrics
    (sevir,) = tasks_for('sevir', dict(in_shape=[13, 1, 384, 384], pre_seq_length=13, aft_seq_length=12))
    assert sevir.encoder_depth == 4 and 'csi' in sevir.metrics
    (other,) = tasks_for('weather', dict(in_shape=[12, 1, 32, 64], pre_seq_length=12, aft_seq_length=12,
                                         metrics=['mse', 'rmse', 'mae']))
    assert other.encoder_depth == 2 and other.metrics == ('mse', 'rmse', 'mae')
    assert [t.name for t in tasks_for('multi3', {})] == ['kitti', 'traffic4cast', 'kth']


def test_the_launcher_refuses_a_bad_batch_limit_by_name():
    assert batch_limit('3') == 3 and batch_limit('0.25') == 0.25 and batch_limit('0') == 0
    for bad in ('two', '-1', '1.5'):
        with pytest.raises(Exception, match=f"got '{bad}'"):
            batch_limit(bad)


def test_the_metric_line_is_in_openstls_order_then_ours():
    from openstl_unistd.openstl_plugin import metric_line

    scores = {'psnr': 1.0, 'csi_m': 0.5, 'ssim': 0.25, 'mse': 2.0, 'rmse': 3.0, 'mae': 4.0}
    assert metric_line(scores) == 'mse:2.0, mae:4.0, rmse:3.0, ssim:0.25, psnr:1.0, csi_m:0.5'


# ---- with a real OpenSTL, in this process ---------------------------------------------------------

def openstl_arguments_for(dataname: str, **options) -> dict:
    """The keyword arguments OpenSTL's ``BaseExperiment`` gives a method (parser defaults, the dataset's
    parameters, what it adds), with ``options`` as an OpenSTL config would set them."""
    import openstl_unistd
    from openstl.datasets import dataset_parameters
    from openstl.utils.parser import default_parser

    openstl_unistd.register()
    args = default_parser()
    args.update(dataset_parameters[dataname])
    args.update(dataname=dataname, steps_per_epoch=4, test_mean=0.0, test_std=1.0, save_dir='unused', epoch=2,
                config_file='my_config.py')
    args.update(options)
    return args


def build_method(method: str, dataname: str, **options):
    from openstl.methods import method_maps

    return method_maps[method](**openstl_arguments_for(dataname, method=method, **options))


TINY = dict(backbone='vit_tiny_patch16_224', pretrained=False, backbone_kwargs=dict(depth=1), hidden_channels=8)


def hand_ssim(pred: np.ndarray, true: np.ndarray, data_range: float, win: int = 7) -> float:
    """SSIM of one ``(C, H, W)`` frame written out: every 7×7 window (uniform weights, sample covariance),
    K1 = 0.01, K2 = 0.03, averaged over windows and channels (scikit-image's defaults)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for x, y in zip(pred.astype(np.float64), true.astype(np.float64)):
        for i in range(x.shape[0] - win + 1):
            for j in range(x.shape[1] - win + 1):
                a, b = x[i:i + win, j:j + win].ravel(), y[i:i + win, j:j + win].ravel()
                cov = np.cov(a, b)  # sample (N − 1) covariances
                values.append((2 * a.mean() * b.mean() + c1) * (2 * cov[0, 1] + c2) /
                              ((a.mean() ** 2 + b.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return float(np.mean(values))


@needs_openstl
def test_one_ssim_convention_for_our_methods_and_openstls(tmp_path):
    from openstl.core.metrics import metric

    from openstl_unistd.core.metrics import ForecastMetrics
    from openstl_unistd.openstl_plugin import SSIM_DATA_RANGE

    rng = np.random.default_rng(0)
    true = rng.uniform(0, 1, (2, 3, 2, 16, 16)).astype(np.float32)           # (B, T', C, H, W)
    pred = np.clip(true + rng.normal(0, 0.2, true.shape), 0, 1).astype(np.float32)
    ours = build_method('unistd', 'taxibj', **TINY)
    scores = ForecastMetrics(['ssim'], ssim_data_range=ours.options.ssim_data_range)
    scores.update(torch.from_numpy(pred), torch.from_numpy(true))
    by_ours = scores.compute()['ssim']
    by_openstl = metric(pred, true, metrics=['ssim'])[0]['ssim']               # a baseline's line (patched call)
    by_hand = np.mean([hand_ssim(p, t, 2.0) for p, t in zip(pred.reshape(-1, 2, 16, 16), true.reshape(-1, 2, 16, 16))])
    assert SSIM_DATA_RANGE == 2.0
    assert by_ours == pytest.approx(by_hand, abs=1e-6) and by_openstl == pytest.approx(by_hand, abs=1e-6)
    other = np.mean([hand_ssim(p, t, 1.0) for p, t in zip(pred.reshape(-1, 2, 16, 16), true.reshape(-1, 2, 16, 16))])
    assert abs(other - by_hand) > 1e-3  # the convention matters for these frames


ALTERNATIVES = {
    'backbone': 'vit_small_patch16_224', 'pretrained': 'FILE', 'backbone_kwargs': dict(depth=2), 'backbone_seed': 1,
    'hidden_channels': 12, 'lora': dict(max_rank=16), 'temporal': False, 'inner_channels': 3, 'skip': False,
    'decode': 'direct', 'train_backbone': True, 'checkpointing': True,
}
"""A value other than the default for every UniSTD option (``FILE``: a weights file of other weights)."""


def fingerprint(model: torch.nn.Module) -> tuple:
    """What tells two built models apart: parameter names, shapes, values and trainability, module types,
    and every plain attribute of every module (flags such as checkpointing)."""
    parameters = tuple((n, tuple(p.shape), p.requires_grad, float(p.detach().double().sum()))
                       for n, p in model.named_parameters())
    attributes = tuple((name, type(m).__name__, tuple(sorted((k, repr(v)) for k, v in vars(m).items()
                                                              if isinstance(v, (bool, int, float, str, tuple)))))
                       for name, m in model.named_modules())
    return parameters, attributes


@needs_openstl
def test_every_unistd_option_of_an_openstl_config_reaches_the_model(tmp_path):
    import re
    import timm

    from openstl_unistd.models.registry import model_arguments

    documented = set(re.findall(r'^\| `model\.(\w+)`', (ROOT / 'docs' / 'training.md').read_text(), re.M)) - {'type'}
    assert documented <= set(model_arguments('UniSTD')) == set(ALTERNATIVES)  # a new option needs a row here
    weights = tmp_path / 'other.pth'
    torch.manual_seed(1)
    torch.save(timm.create_model('vit_tiny_patch16_224', depth=1, num_classes=0).state_dict(), weights)

    def built(**options):
        torch.manual_seed(0)
        return fingerprint(build_method('unistd', 'taxibj', **{**TINY, **options}).model)

    default = built()
    assert built() == default
    for name, value in ALTERNATIVES.items():
        assert built(**{name: str(weights) if value == 'FILE' else value}) != default, name


@needs_openstl
def test_a_key_neither_openstl_nor_the_method_knows_is_refused_by_name():
    from openstl_unistd.errors import UserKeyError

    with pytest.raises(UserKeyError, match=r"'my_config.py' for method 'unistd': unknown key\(s\) \['hiden_channels'\]"):
        build_method('unistd', 'taxibj', hiden_channels=4, **TINY)
    with pytest.raises(UserKeyError, match=r"'copy_last' is an evaluation option of openstl_unistd's tools/train.py"):
        build_method('unistd', 'taxibj', copy_last=True, **TINY)
    with pytest.raises(UserKeyError, match=r"'model' is a section of openstl_unistd's tools/train.py configs"):
        build_method('multitask_tau', 'multi_demo', model=dict(type='SimVP'))
    with pytest.raises(UserKeyError, match=r"rank_search: unknown key\(s\) \['budgte'\]"):
        build_method('unistd', 'taxibj', rank_search=dict(budgte=30), **TINY)
    with pytest.raises(UserKeyError, match=r"for method 'multitask_simvp': unknown key\(s\) \['backbone'\]"):
        build_method('multitask_simvp', 'multi_demo', backbone='clip')
    tau = build_method('multitask_tau', 'multi_demo', alpha=0.3, hid_S=8, hid_T=16, N_S=2, N_T=2)
    assert tau.divergence.alpha == 0.3 and tau.model.model_type == 'tau'


@needs_openstl
def test_missing_weights_say_what_to_set_in_the_openstl_config(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from openstl_unistd.modules.pretrained import PretrainedWeightsNotFoundError

    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path))
    with pytest.raises(PretrainedWeightsNotFoundError) as error:
        build_method('unistd', 'taxibj', backbone='clip', pretrained=True)
    message = str(error.value)
    assert "pretrained = '<path to the file>' in the OpenSTL config (-c FILE" in message
    assert '--cfg-options' not in message and 'timm/vit_base_patch16_clip_224.openai' in message


def test_the_openstl_environment_builder_finds_the_clone_in_an_archive_or_says_what_is_missing(tmp_path):
    import tarfile

    from tests.tools import tool

    builder = tool('openstl_env')
    clone = tmp_path / 'OpenSTL-abc'
    (clone / 'openstl').mkdir(parents=True)
    (clone / 'tools').mkdir()
    (clone / 'openstl' / '__init__.py').write_text('')
    (clone / 'tools' / 'train.py').write_text('')
    archive = tmp_path / 'OpenSTL-abc.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(clone, arcname='OpenSTL-abc')
    unpacked = builder.unpack(archive, tmp_path / 'venv' / 'src')
    assert unpacked == tmp_path / 'venv' / 'src' / 'OpenSTL-abc' and (unpacked / 'tools' / 'train.py').is_file()
    assert builder.wanted_stamp(archive).startswith(f'archive {builder.file_digest(archive)}')
    (clone / 'tools' / 'train.py').unlink()
    with tarfile.open(tmp_path / 'other.tar.gz', 'w:gz') as tar:
        tar.add(clone, arcname='OpenSTL-abc')
    for source in (tmp_path / 'other.tar.gz', clone, tmp_path / 'nowhere'):
        with pytest.raises(SystemExit) as stop:
            builder.build(source, tmp_path / 'venv2')
        assert stop.value.code == 2
    assert not (tmp_path / 'venv2' / 'bin').exists()  # no environment is made for a bad source
