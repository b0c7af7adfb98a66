"""The reference predictors scored next to every model: copy the last frame, predict the training mean."""
from pathlib import Path

import lightning as L
import numpy as np
import pytest

from openstl_unistd.datasets.demo import DemoTraffic, DemoWave
from openstl_unistd.engine.config import build_datamodule, build_method, build_model, build_tasks, load_config
from openstl_unistd.engine.experiment import format_results, model_label

ROOT = Path(__file__).resolve().parents[1]


def scored(tmp_path, max_samples=512):
    cfg = load_config(ROOT / 'configs/unistd/demo.py', {
        'tasks': ['demo_traffic', 'demo_wave'], 'model.backbone_kwargs.depth': 1, 'model.hidden_channels': 4,
        'data.datasets.demo_traffic.num_samples': 12, 'data.datasets.demo_wave': {'num_samples': 10},
        'data.val_batch_size': 5, 'evaluation.copy_last': True, 'evaluation.train_mean': True,
        'evaluation.train_mean_samples': max_samples, 'evaluation.figures': False,
        'trainer.enable_progress_bar': False})
    tasks = build_tasks(cfg)
    datamodule = build_datamodule(cfg, tasks, str(tmp_path / 'data'))
    method = build_method(cfg, build_model(cfg, tasks), tasks)
    L.Trainer(accelerator='cpu', logger=False, enable_progress_bar=False, enable_model_summary=False).test(
        method, datamodule=datamodule, verbose=False)
    return method


def numpy_scores(pred, true):
    """OpenSTL's image metrics' MSE/MAE (per-frame sums) of model-range ``(N, T, C, H, W)`` arrays."""
    frames = pred.shape[0] * pred.shape[1]
    return ((pred - true) ** 2).sum() / frames, np.abs(pred - true).sum() / frames


def test_train_mean_predictor_scores_equal_a_direct_numpy_computation(tmp_path):
    method = scored(tmp_path)
    for cls in (DemoTraffic, DemoWave):
        count = {'demo_traffic': 12, 'demo_wave': 10}[cls.task]
        train = cls(tmp_path / 'data', 'train', num_samples=count)
        test = cls(tmp_path / 'data', 'test', num_samples=count)
        total = train.input_frames + train.output_frames
        mean_frame = (train.sequences[:, :total].astype(np.float64) / 255).mean(axis=(0, 1))
        targets = test.sequences[:, train.input_frames:total].astype(np.float64) / 255
        mse, mae = numpy_scores(np.broadcast_to(mean_frame, targets.shape), targets)
        scores = method.train_mean_results[cls.task]
        assert scores['mse'] == pytest.approx(mse, rel=1e-5) and scores['mae'] == pytest.approx(mae, rel=1e-5)
        inputs = test.sequences[:, train.input_frames - 1:train.input_frames].astype(np.float64) / 255
        mse, _ = numpy_scores(np.broadcast_to(inputs, targets.shape), targets)
        assert method.copy_last_results[cls.task]['mse'] == pytest.approx(mse, rel=1e-5)


def test_train_mean_over_a_subset_uses_evenly_spaced_samples(tmp_path):
    method = scored(tmp_path, max_samples=3)
    train = DemoTraffic(tmp_path / 'data', 'train', num_samples=12)
    picks = [0, 6, 11]  # linspace(0, 11, 3) rounded
    expected = (train.sequences[picks].astype(np.float64) / 255).mean(axis=(0, 1))
    np.testing.assert_allclose(method.train_means['demo_traffic'].cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_table_shows_every_reference_row_and_names_the_model():
    results = {'wave': {'mse': 1.0}}
    table = format_results(results, {'copy_last_frame': {'wave': {'mse': 3.0}}, 'train_mean': {'wave': {'mse': 2.0}}},
                           'TAU')
    assert [line.split()[1:] for line in table.splitlines()[2:]] == [['TAU', '1'], ['copy', 'last', 'frame', '3'],
                                                                    ['training', 'mean', '2']]
    assert model_label({'model': {'type': 'SimVP', 'model_type': 'tau'}}) == 'TAU'
    assert model_label({'model': {'type': 'SimVP', 'model_type': 'incepu'}}) == 'SimVP v1'
    assert model_label({'model': {'type': 'UniSTD'}}) == 'UniSTD'
