import numpy as np
import pytest

from openstl_unistd.datasets.demo import DemoAdvection, DemoDigits, DemoTraffic, DemoWave
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import DEMO_TASKS

from .physical_values import denormalize

DEMOS = [DemoDigits, DemoAdvection, DemoTraffic, DemoWave]


@pytest.mark.parametrize('cls', DEMOS)
def test_demo_tasks_have_the_task_shapes_and_range(cls, tmp_path):
    spec = DEMO_TASKS[cls.task]
    dataset = build_dataset(spec, 'train', tmp_path, dict(num_samples=12))
    assert len(dataset) == 12
    x, y = dataset[5]
    assert x.shape == spec.input_shape and y.shape == spec.output_shape
    assert 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.max()) > 0.5
    stored = dataset.sequences[5, :spec.input_frames] / 255.0
    np.testing.assert_allclose(denormalize(dataset, x.numpy()), stored * dataset.std + dataset.mean, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('cls', DEMOS)
def test_generation_is_deterministic_cached_and_seeded(cls, tmp_path):
    first = cls(tmp_path / 'one', 'train', num_samples=6, seed=3)
    again = cls(tmp_path / 'two', 'train', num_samples=6, seed=3)
    np.testing.assert_array_equal(first.sequences, again.sequences)
    other = cls(tmp_path / 'one', 'train', num_samples=6, seed=4)
    assert not np.array_equal(first.sequences, other.sequences)
    test = cls(tmp_path / 'one', 'test', num_samples=6, seed=3)
    assert not np.array_equal(first.sequences, test.sequences)
    cached = sorted(p.name for p in (tmp_path / 'one' / 'demo').iterdir())
    assert cached == sorted({f'{cls.task}_train_s3_n6_t{first.sequences.shape[1]}.npy',
                             f'{cls.task}_train_s4_n6_t{first.sequences.shape[1]}.npy',
                             f'{cls.task}_test_s3_n6_t{first.sequences.shape[1]}.npy'})
    assert isinstance(cls(tmp_path / 'one', 'train', num_samples=6, seed=3).sequences, np.memmap)


@pytest.mark.parametrize('cls', DEMOS)
def test_demo_tasks_are_learnable_in_principle(cls, tmp_path):
    """The next frame differs from the last input frame, and the motion is not noise."""
    dataset = cls(tmp_path, 'train', num_samples=32)
    sequences = dataset.sequences.astype(np.float32) / 255
    t = dataset.input_frames
    change = np.abs(sequences[:, t] - sequences[:, t - 1]).mean(axis=(1, 2, 3))
    assert (change > 0).all()
    # frames are far more alike in time than two unrelated samples are
    unrelated = np.abs(sequences[1:, t] - sequences[:-1, t]).mean()
    assert change.mean() < unrelated


def test_digits_keep_evaluation_digits_apart_and_move(tmp_path):
    dataset = DemoDigits(tmp_path, 'test', num_samples=4)
    first, last = dataset.sequences[0, 0], dataset.sequences[0, -1]
    assert first.shape == (1, 32, 32) and not np.array_equal(first, last)


def test_the_wave_is_a_signed_zero_centred_field_that_changes_sign(tmp_path):
    dataset = DemoWave(tmp_path, 'train', num_samples=32)
    x, y = dataset[0]
    physical = denormalize(dataset, np.concatenate([x.numpy(), y.numpy()]))
    assert physical.min() < -0.3 and physical.max() > 0.3 and abs(physical.mean()) < 0.05
    u = dataset.sequences.astype(np.float32) / 255 * 2 - 1
    assert abs(u.mean()) < 0.01 and np.abs(u).max() == 1
    # an oscillation: ten frames on, the field is anti-correlated with the last input frame on average,
    # so copying the last frame is worse than predicting zero
    last, later = u[:, 3], u[:, 13]
    assert ((last - later) ** 2).mean() > (later ** 2).mean()
