"""One Scaling from the loaders to the metrics and the model card, and its one validator."""
import dataclasses

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from openstl_unistd.core.metrics import ForecastMetrics
from openstl_unistd.core.scaling import Scaling, ScalingError
from openstl_unistd.datasets.checks import DataError
from openstl_unistd.datasets.datamodule import MultiTaskDataModule
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.engine.trained_model_config import datamodule_scalings
from openstl_unistd.inference.model_card import ModelCard
from openstl_unistd.methods.multitask import MultiTaskMethod
from openstl_unistd.tasks import resolve_task

RAIN = resolve_task(dict(name='rain', input_frames=3, output_frames=2, channels=2, height=8, width=8,
                         encoder_depth=1))


class Constant(nn.Module):
    """Predicts model-range zeros, i.e. each channel's ``mean`` in physical units."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return x.new_zeros(x.shape[0], RAIN.output_frames, *x.shape[2:])


def _field(tmp_path) -> np.ndarray:
    """Two channels on very different scales, so that a wrong scaling changes every physical error."""
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (30, 5, 2, 8, 8)) * np.array([1.0, 50.0])[:, None, None] + \
        np.array([0.0, 300.0])[:, None, None]
    np.save(tmp_path / 'field.npy', data.astype(np.float32))
    return data.astype(np.float32)


def test_metrics_through_the_method_equal_metrics_by_hand_with_the_loaders_scaling(tmp_path):
    """Breaks if the method's metrics take another scaling than the test loader's (the identity, mean and std
    swapped, one channel's for all) or if the scaling the card stores is not the loader's."""
    data = _field(tmp_path)
    options = {'rain': dict(type='arrays', path='field.npy', scale='standard')}
    datamodule = MultiTaskDataModule([RAIN], tmp_path, options, batch_size=4, pin_memory=False)
    method = MultiTaskMethod(Constant(), [RAIN], figures=False)
    L.Trainer(accelerator='cpu', logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False).test(method, datamodule=datamodule, verbose=False)

    test = datamodule.build_split('test')['rain']
    scaling = test.scaling
    assert scaling == Scaling.of(test.mean, test.std) and scaling.channels == 2
    assert method.test_metrics['rain'].scaling == scaling
    assert datamodule_scalings(datamodule, ['rain']) == {'rain': scaling}        # what the model card stores

    targets = data[test.offset:test.offset + len(test), RAIN.input_frames:].astype(np.float64)  # physical, from the file
    predicted = np.asarray(scaling.mean).reshape(1, 1, 2, 1, 1)                 # model-range 0 in physical units
    frames = targets.shape[0] * targets.shape[1]
    scores = method.test_results['rain']
    assert scores['mse'] == pytest.approx(((predicted - targets) ** 2).sum() / frames, rel=1e-5)
    assert scores['mae'] == pytest.approx(np.abs(predicted - targets).sum() / frames, rel=1e-5)
    identity = ForecastMetrics(RAIN.metrics, data_range=1.0)
    x, y = (torch.stack(part) for part in zip(*[test[i] for i in range(len(test))]))
    identity.update(torch.zeros_like(y), y)
    assert identity.compute()['mse'] != pytest.approx(scores['mse'], rel=1e-2)   # the check above is not vacuous


def test_the_validator_names_task_file_and_expected_against_actual(tmp_path):
    _field(tmp_path)
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*field.npy: 'array': normalization "
                                        r'mean=\[1.0, 1.0\], std=\[2.0, 0.0\]; expected finite values and std ≠ 0'):
        build_dataset(RAIN, 'train', tmp_path, dict(type='arrays', path='field.npy', mean=1.0, std=[2.0, 0.0]))
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*field.npy: 'array': std has 3 values, "
                                        r'expected 1 or one per channel \(2\)'):
        build_dataset(RAIN, 'train', tmp_path, dict(type='arrays', path='field.npy', mean=1.0, std=[1.0, 2.0, 3.0]))

    test = build_dataset(RAIN, 'test', tmp_path, dict(type='arrays', path='field.npy'))
    test.std = np.array([1.0, np.inf], dtype=np.float32).reshape(2, 1, 1)
    with pytest.raises(ScalingError, match=r"task 'rain', split 'test': normalization mean=\[.*\], "
                                           r'std=\[1.0, inf\]; expected finite values and std ≠ 0'):
        test.scaling

    card = {'model': {'type': 'UniSTD'}, 'tasks': [dataclasses.asdict(RAIN)],
            'scalings': {'rain': {'mean': 0, 'std': 0}}}
    with pytest.raises(ValueError, match=r"model.ckpt: scaling of task 'rain': normalization mean=\[0.0\], "
                                         r'std=\[0.0\]; expected finite values and std ≠ 0'):
        ModelCard.from_dict(card, 'model.ckpt')
    with pytest.raises(ScalingError, match=r'scaling: mean has 2 values and std 3; expected 1 or C of each'):
        Scaling.of([0, 1], [1, 2, 3])
