"""The OpenSTL plug-in: without OpenSTL, a clear ImportError; with it, OpenSTL's own tools run UniSTD.

Tests marked ``needs_openstl`` skip unless OpenSTL is importable. To run them, install OpenSTL into
a scratch environment beside this package: ``git clone https://github.com/chengtan9907/OpenSTL``,
``pip install -e OpenSTL "timm<=1.0.11" fvcore`` and ``pip install -e .`` here, then
``python -m pytest tests/test_openstl_plugin.py`` with that environment's Python.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openstl_unistd.openstl_train import CONFIGS, find_train_script, main, openstl_arguments

ROOT = Path(__file__).resolve().parents[1]
OPENSTL = importlib.util.find_spec('openstl') is not None and importlib.util.find_spec('openstl.api') is not None
needs_openstl = pytest.mark.skipif(not OPENSTL, reason='OpenSTL is not installed: git clone '
                                   'https://github.com/chengtan9907/OpenSTL && pip install -e OpenSTL '
                                   '"timm<=1.0.11" fvcore, then run these tests with that Python')


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


TINY = ("backbone = 'vit_tiny_patch16_224'\npretrained = False\nbackbone_kwargs = dict(depth=1)\n"
        "hidden_channels = 8\nrank_search = dict(epochs=1)\nlr = 1e-3\n")


def run_openstl(tmp_path, *arguments):
    command = [sys.executable, '-m', 'openstl_unistd.openstl_train', '--epoch', '1', '--num_workers', '1',
               '--res_dir', str(tmp_path / 'work'), '--device', 'cpu', *arguments]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)


@needs_openstl
def test_openstl_trains_and_tests_unistd_on_its_own_taxibj_format(tmp_path):
    from openstl_unistd.datasets.fixtures.taxibj import write_taxibj_openstl

    write_taxibj_openstl(tmp_path / 'data', train=8, test=4)
    (tmp_path / 'unistd_tiny.py').write_text("method = 'unistd'\n" + TINY)
    result = run_openstl(tmp_path, '-d', 'taxibj', '-m', 'unistd', '-c', 'unistd_tiny.py', '-b', '2', '-vb', '2',
                         '--data_root', f'{tmp_path / "data"}/', '--ex_name', 'taxibj_unistd')
    assert result.returncode == 0, result.stderr[-3000:]
    saved = tmp_path / 'work' / 'taxibj_unistd' / 'saved'
    preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
    assert preds.shape == trues.shape == (4, 4, 2, 32, 32)
    metrics = np.load(saved / 'metrics.npy')
    log = next((tmp_path / 'work' / 'taxibj_unistd').glob('*.log')).read_text()
    line = next(l for l in log.splitlines() if ' - mse:' in l)
    assert f'mae:{metrics[0]}' in line and f'mse:{metrics[1]}' in line and 'ssim:' in line and 'psnr:' in line
    mse = ((preds - trues) ** 2).mean(axis=(0, 1)).sum()
    assert metrics[1] == pytest.approx(mse, rel=1e-4)  # OpenSTL's MSE of the saved predictions


@needs_openstl
def test_openstl_trains_unistd_on_one_of_our_task_sets(tmp_path):
    (tmp_path / 'unistd_demo.py').write_text(
        "method = 'unistd'\n" + TINY + "datasets = dict(demo_digits=dict(num_samples=8), "
        "demo_advection=dict(num_samples=8), demo_traffic=dict(num_samples=8))\n")
    result = run_openstl(tmp_path, '-d', 'multi_demo', '-m', 'unistd', '-c', 'unistd_demo.py', '-b', '4', '-vb', '4',
                         '--data_root', str(tmp_path / 'data'), '--ex_name', 'demo_unistd')
    assert result.returncode == 0, result.stderr[-3000:]
    work = tmp_path / 'work' / 'demo_unistd'
    log = next(work.glob('*.log')).read_text()
    for task, shape in (('demo_digits', (8, 5, 1, 32, 32)), ('demo_traffic', (8, 4, 2, 32, 32))):
        assert f'{task}: mse:' in log
        assert np.load(work / 'saved' / task / 'preds.npy').shape == shape
    assert (work / 'checkpoints' / 'best.ckpt').is_file()


@needs_openstl
def test_openstl_own_simvp_still_trains_with_the_plugin_registered(tmp_path):
    from openstl_unistd.datasets.fixtures.taxibj import write_taxibj_openstl

    write_taxibj_openstl(tmp_path / 'data', train=8, test=4)
    (tmp_path / 'simvp.py').write_text("method = 'SimVP'\nmodel_type = 'gSTA'\nhid_S = 8\nhid_T = 16\nN_S = 2\n"
                                       "N_T = 2\nlr = 1e-3\n")
    result = run_openstl(tmp_path, '-d', 'taxibj', '-m', 'simvp', '-c', 'simvp.py', '-b', '2', '-vb', '2',
                         '--sched', 'onecycle', '--data_root', f'{tmp_path / "data"}/', '--ex_name', 'taxibj_simvp')
    assert 'Trainer.fit` stopped: `max_epochs=1` reached' in result.stdout + result.stderr, result.stderr[-3000:]
    # OpenSTL copies best.ckpt in on_test_end; its own test stage needs scikit-image < 0.20 and lpips
    assert list((tmp_path / 'work' / 'taxibj_simvp' / 'checkpoints').glob('best-epoch=00-*.ckpt'))


@needs_openstl
@pytest.mark.parametrize('method,settings', [
    ('multitask_tau', 'hid_S = 8\nhid_T = 16\nN_S = 2\nN_T = 2\n'),
    ('multitask_earthformer', 'earthformer = dict(base_units=16, enc_depth=[1, 1], dec_depth=[1, 1], num_heads=2, '
                              'num_global_vectors=2, checkpoint_level=0)\n'),
])
def test_openstl_trains_our_multitask_baselines(tmp_path, method, settings):
    (tmp_path / 'baseline.py').write_text(
        f"method = '{method}'\nlr = 1e-3\n" + settings + "datasets = dict(demo_digits=dict(num_samples=8), "
        "demo_advection=dict(num_samples=8), demo_traffic=dict(num_samples=8))\n")
    result = run_openstl(tmp_path, '-d', 'multi_demo', '-m', method, '-c', 'baseline.py', '-b', '4', '-vb', '4',
                         '--data_root', str(tmp_path / 'data'), '--ex_name', method)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next((tmp_path / 'work' / method).glob('*.log')).read_text()
    assert 'demo_advection: mse:' in log


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
