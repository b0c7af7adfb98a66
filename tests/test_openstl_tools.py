"""OpenSTL's own tools (its tools/train.py and tools/test.py, through our launcher) on tiny files in OpenSTL's
formats: UniSTD, our multi-task baselines and OpenSTL's own SimVP and TAU, each scored on one convention.

Every metric line is checked against OpenSTL's ``metric()`` on the arrays the run saved. Needs a real
OpenSTL: ``make test-openstl OPENSTL_SRC=<an OpenSTL clone or source .tar.gz>``.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.with_openstl import (DEMO_DATASETS, OPENSTL_MARKS, TINY_UNISTD, assert_line_is_openstls_metric, log_of,
                                metric_lines, run_launcher, succeeded)

pytestmark = OPENSTL_MARKS

TAXIBJ_SHAPE = (4, 2, 32, 32)


@pytest.fixture(scope='module')
def taxibj(tmp_path_factory) -> Path:
    """TaxiBJ in OpenSTL's npz layout (values in [-1, 1]) whose training targets are the opposite of the
    test targets (OpenSTL validates TaxiBJ on its test split): every epoch of training makes validation
    worse, so the best checkpoint is the first epoch's and differs from the last."""
    root = tmp_path_factory.mktemp('taxibj_data')
    rng = np.random.default_rng(0)
    inputs = lambda n: rng.uniform(-1, 1, (n, *TAXIBJ_SHAPE))  # noqa: E731
    targets = lambda n, level: np.clip(level + rng.normal(0, 0.1, (n, *TAXIBJ_SHAPE)), -1, 1)  # noqa: E731
    (root / 'taxibj').mkdir()
    np.savez(root / 'taxibj' / 'dataset.npz', X_train=inputs(16), Y_train=targets(16, 0.8), X_test=inputs(4),
             Y_test=targets(4, -0.8))
    return root


def best_score(path: Path) -> float:
    """The best monitored ``val_loss`` recorded by OpenSTL's checkpoint callback in checkpoint ``path``."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    return float(next(v for k, v in checkpoint['callbacks'].items() if 'CheckpointCallback' in k)['best_model_score'])


def taxibj_multiply_adds() -> int:
    """Multiply-adds of one TaxiBJ sample of the UniSTD that ``TINY_UNISTD`` builds (counted here, not by OpenSTL)."""
    from openstl_unistd.engine.analysis import multiply_accumulates
    from openstl_unistd.models import UniSTD
    from openstl_unistd.openstl_plugin import tasks_for

    tasks = tasks_for('taxibj', dict(in_shape=TAXIBJ_SHAPE, pre_seq_length=4, aft_seq_length=4, metrics=['mse']))
    model = UniSTD(tasks, backbone='vit_tiny_patch16_224', backbone_kwargs=dict(depth=1), hidden_channels=8)
    return multiply_accumulates(model, 'taxibj')


def test_unistd_on_taxibj_then_openstls_test_tool_scores_the_best_epoch(tmp_path, taxibj):
    (tmp_path / 'unistd.py').write_text("method = 'unistd'\n" + TINY_UNISTD.replace('lr = 1e-3', 'lr = 1e-2').replace(
        'epochs=1', 'epochs=0'))
    common = ['-d', 'taxibj', '-m', 'UniSTD', '-c', 'unistd.py', '-b', '2', '-vb', '2', '--data_root', f'{taxibj}/',
              '--ex_name', 'taxibj']
    trained = run_launcher(tmp_path, *common, '--epoch', '2', '--min_lr', '1e-2')
    assert succeeded(trained), trained.stderr[-3000:]
    work = tmp_path / 'work' / 'taxibj'
    train_log = log_of(work)
    assert 'SSIM data_range = 2 for every method' in train_log
    flops = next(line for line in train_log.splitlines() if line.startswith('| taxibj |'))
    assert int(flops.split('(')[1].split(')')[0].replace(',', '')) == taxibj_multiply_adds()
    train_scores = metric_lines(train_log)[None]
    assert list(train_scores) == ['mse', 'mae', 'ssim', 'psnr']  # OpenSTL's TaxiBJ list, in its metric line's order
    assert_line_is_openstls_metric(train_scores, work / 'saved')
    saved_by_training = {p.name: p.read_bytes() for p in (work / 'saved').iterdir()}

    channels_pixels = np.prod(TAXIBJ_SHAPE[1:])  # OpenSTL's mse sums over C, H, W; val_loss is the mean
    best = best_score(work / 'checkpoints' / 'last.ckpt')
    last = float(train_log.split('Vali Loss: ')[-1].split()[0])  # the last epoch's, logged by OpenSTL
    assert list((work / 'checkpoints').glob('best-epoch=00-*.ckpt'))  # the data's design held: epoch 0 was best
    assert last > (1 + 1e-3) * best  # ten times the tolerance that tells below which checkpoint was tested
    assert train_scores['mse'] / channels_pixels == pytest.approx(last, rel=1e-4)  # tools/train.py tests the last

    tested = run_launcher(tmp_path, *common, script='test')
    assert succeeded(tested), tested.stderr[-3000:]
    test_log = log_of(work, 'test')  # the test-only run has a log of its own
    (folder,) = [p for p in work.iterdir() if p.is_dir() and p.name.startswith('test_')]
    test_scores = metric_lines(test_log)[None]
    assert_line_is_openstls_metric(test_scores, folder / 'saved')
    assert test_scores['mse'] / channels_pixels == pytest.approx(best, rel=1e-4)  # best.ckpt, not the last epoch
    assert {p.name: p.read_bytes() for p in (work / 'saved').iterdir()} == saved_by_training  # not overwritten
    assert log_of(work) == train_log


@pytest.mark.parametrize('method', ['simvp', 'tau'])
def test_openstls_own_methods_are_scored_on_the_same_taxibj_files(tmp_path, taxibj, method):
    (tmp_path / 'own.py').write_text(f"method = '{method.upper() if method == 'tau' else 'SimVP'}'\nalpha = 0.1\n"
                                     "model_type = 'gSTA'\nhid_S = 8\nhid_T = 16\nN_S = 2\nN_T = 2\nlr = 1e-3\n")
    result = run_launcher(tmp_path, '-d', 'taxibj', '-m', method, '-c', 'own.py', '-b', '2', '-vb', '2', '--epoch', '1',
                          '--sched', 'onecycle', '--data_root', f'{taxibj}/', '--ex_name', method)
    assert succeeded(result), result.stderr[-3000:]
    work = tmp_path / 'work' / method
    log = log_of(work)
    assert 'SSIM data_range = 2 for every method' in log
    scores = metric_lines(log)[None]
    assert list(scores) == ['mse', 'mae', 'ssim', 'psnr']
    assert_line_is_openstls_metric(scores, work / 'saved')


def test_unistd_on_openstls_moving_mnist_kept_short(tmp_path):
    from openstl_unistd.datasets.fixtures.moving_mnist import write_moving_mnist

    write_moving_mnist(tmp_path / 'data', digits=5, test_sequences=4)
    (tmp_path / 'unistd.py').write_text("method = 'unistd'\n" + TINY_UNISTD)
    result = run_launcher(tmp_path, '--limit-train-batches', '3', '-d', 'mmnist', '-m', 'unistd', '-c', 'unistd.py',
                          '-b', '2', '-vb', '2', '--epoch', '1', '--data_root', f'{tmp_path / "data"}/',
                          '--ex_name', 'mmnist')
    assert succeeded(result), result.stderr[-3000:]
    work = tmp_path / 'work' / 'mmnist'
    checkpoint = torch.load(work / 'checkpoints' / 'last.ckpt', map_location='cpu', weights_only=True)
    batches = checkpoint['loops']['fit_loop']['epoch_loop.batch_progress']['total']['completed']
    assert batches == 3  # of OpenSTL's 10 000 sequences / 2 per batch
    assert np.load(work / 'saved' / 'preds.npy').shape == (4, 10, 1, 64, 64)
    assert_line_is_openstls_metric(metric_lines(log_of(work))[None], work / 'saved')


def test_unistd_on_a_task_set_takes_its_rank_search_setting(tmp_path):
    (tmp_path / 'unistd.py').write_text("method = 'unistd'\n" + TINY_UNISTD.replace(
        'rank_search = dict(epochs=1)', 'rank_search = dict(epochs=1, budget=44, lr=0.5)') + DEMO_DATASETS)
    result = run_launcher(tmp_path, '-d', 'multi_demo', '-m', 'unistd', '-c', 'unistd.py', '-b', '4', '-vb', '4',
                          '--epoch', '2', '--data_root', str(tmp_path / 'data'), '--ex_name', 'demo')
    assert succeeded(result), result.stderr[-3000:]
    work = tmp_path / 'work' / 'demo'
    state = torch.load(work / 'checkpoints' / 'last.ckpt', map_location='cpu', weights_only=True)['state_dict']
    ranks = [v for k, v in state.items() if k.endswith('.rank')]
    assert 4.5 * sum(r.numel() for r in ranks) == 99  # the default budget: 22 ranks at the initial 4.5
    assert float(sum(r.sum() for r in ranks)) == 44  # searched, then rounded to the given budget
    assert all(torch.equal(r, r.round()) for r in ranks)
    lines = metric_lines(log_of(work))
    assert set(lines) == {'demo_digits', 'demo_advection', 'demo_traffic'}
    for task, scores in lines.items():
        assert_line_is_openstls_metric(scores, work / 'saved' / task)


@pytest.mark.parametrize('method,settings', [
    ('multitask_simvp', "model_type = 'incepu'\nhid_S = 8\nhid_T = 16\nN_S = 2\nN_T = 2\n"),
    ('multitask_tau', 'hid_S = 8\nhid_T = 16\nN_S = 2\nN_T = 2\nalpha = 0.2\n'),
    ('multitask_earthformer', 'earthformer = dict(base_units=16, enc_depth=[1, 1], dec_depth=[1, 1], num_heads=2, '
                              'num_global_vectors=2, checkpoint_level=0)\n'),
])
def test_our_multitask_baselines_on_a_task_set(tmp_path, method, settings):
    (tmp_path / 'baseline.py').write_text(f"method = '{method}'\nlr = 1e-3\n" + settings + DEMO_DATASETS)
    result = run_launcher(tmp_path, '-d', 'multi_demo', '-m', method, '-c', 'baseline.py', '-b', '4', '-vb', '4',
                          '--epoch', '1', '--data_root', str(tmp_path / 'data'), '--ex_name', method)
    assert succeeded(result), result.stderr[-3000:]
    work = tmp_path / 'work' / method
    lines = metric_lines(log_of(work))
    assert set(lines) == {'demo_digits', 'demo_advection', 'demo_traffic'}
    for task, scores in lines.items():
        assert_line_is_openstls_metric(scores, work / 'saved' / task)


def test_a_config_key_nobody_knows_is_one_error_line_naming_it(tmp_path):
    (tmp_path / 'typo.py').write_text("method = 'unistd'\n" + TINY_UNISTD + 'hiden_channels = 4\n')
    result = run_launcher(tmp_path, '-d', 'multi_demo', '-m', 'unistd', '-c', 'typo.py', '--epoch', '1',
                          '--data_root', str(tmp_path / 'data'), '--ex_name', 'typo', timeout=300)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and "'hiden_channels'" in last and "'typo.py'" in last
