import gzip
import pickle

import numpy as np
import pytest
import torch

from openstl_unistd.datasets.fixtures.moving_mnist import write_idx_images, write_moving_mnist
from openstl_unistd.datasets.moving_mnist import MovingMNIST, bounce_trajectory
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def test_fixed_set_is_read_time_first_in_model_range_for_val_and_test(tmp_path):
    arrays = write_moving_mnist(tmp_path, test_sequences=3)
    for split in ('val', 'test'):  # OpenSTL validates on the test sequences
        dataset = MovingMNIST(tmp_path, split)
        assert len(dataset) == 3
        x, y = dataset[1]
        assert x.shape == (10, 1, 64, 64) and y.shape == (10, 1, 64, 64) and x.dtype == torch.float32
        assert 0 <= x.min() and y.max() <= 1
        np.testing.assert_allclose(denormalize(dataset, x.numpy())[:, 0], arrays['test'][:10, 1], atol=1e-4)
        np.testing.assert_allclose(denormalize(dataset, y.numpy())[:, 0], arrays['test'][10:, 1], atol=1e-4)
        np.testing.assert_allclose(y.numpy()[:, 0], arrays['test'][10:, 1] / 255, atol=1e-7)


def test_shorter_horizons_take_the_first_frames_and_longer_ones_fail(tmp_path):
    arrays = write_moving_mnist(tmp_path)
    x, y = MovingMNIST(tmp_path, 'test', input_frames=3, output_frames=2)[2]
    assert x.shape == (3, 1, 64, 64) and y.shape == (2, 1, 64, 64)
    np.testing.assert_allclose(y.numpy()[:, 0] * 255, arrays['test'][3:5, 2], atol=1e-4)
    with pytest.raises(ValueError, match=r'sequences of 20 frames, fewer than input_frames \+ output_frames = 10 \+ 11'):
        MovingMNIST(tmp_path, 'test', output_frames=11)


def test_training_sequences_are_fixed_per_index_and_seed_and_digits_move(tmp_path):
    write_moving_mnist(tmp_path)
    dataset = MovingMNIST(tmp_path, 'train', num_train_sequences=6)
    assert len(dataset) == 6
    x, y = dataset[3]
    assert x.shape == (10, 1, 64, 64) and y.shape == (10, 1, 64, 64)
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0
    again = MovingMNIST(tmp_path, 'train', num_train_sequences=6)[3]
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    assert not torch.equal(x, dataset[4][0])
    assert not torch.equal(x, MovingMNIST(tmp_path, 'train', num_train_sequences=6, seed=1)[3][0])
    sequence = torch.cat([x, y])
    assert all(not torch.equal(sequence[t], sequence[t + 1]) for t in range(19))
    assert not torch.equal(y[0], x[-1])
    with pytest.raises(IndexError):
        dataset[6]


def test_training_frames_are_the_file_digits_placed_by_the_layout_and_combined_by_maximum(tmp_path):
    arrays = write_moving_mnist(tmp_path, digits=5)
    dataset = MovingMNIST(tmp_path, 'train', num_train_sequences=4)
    np.testing.assert_array_equal(dataset.digits, arrays['digits'])
    for index in range(4):
        digits, tops, lefts = dataset.layout(index)
        assert digits.shape == (2,) and tops.shape == (2, 20) and lefts.shape == (2, 20)
        assert ((0 <= digits) & (digits < 5)).all()
        assert tops.min() >= 0 and lefts.min() >= 0 and tops.max() <= 36 and lefts.max() <= 36
        assert np.abs(np.diff(tops)).max() <= 4 and np.abs(np.diff(lefts)).max() <= 4  # 0.1 · 36 px a frame
        frames = denormalize(dataset, dataset.frames(index)[:, 0])
        for t in range(20):
            layers = np.zeros((2, 64, 64))
            for n in range(2):
                layers[n, tops[n, t]:tops[n, t] + 28, lefts[n, t]:lefts[n, t] + 28] = arrays['digits'][digits[n]]
            np.testing.assert_allclose(frames[t], layers.max(axis=0), atol=1e-4)


def test_trajectory_moves_first_then_clamps_and_reverses_at_the_walls():
    tops, lefts = bounce_trajectory(0.95, 0.5, 0.0, 4)
    assert lefts.tolist() == [36, 32, 28, 25] and tops.tolist() == [18] * 4  # 1.05 → 1.0, then back
    tops, lefts = bounce_trajectory(0.05, 0.5, np.pi, 3)
    assert lefts.tolist() == [0, 3, 7]  # −0.05 → 0.0, then forward
    tops, lefts = bounce_trajectory(0.5, 0.97, np.pi / 2, 3)
    assert tops.tolist() == [36, 32, 28] and lefts.tolist() == [18] * 3  # y is the row
    tops, lefts = bounce_trajectory(0.3, 0.7, 1.0, 500)
    assert tops.min() == 0 and tops.max() == 36 and lefts.min() == 0 and lefts.max() == 36


def test_datasets_pickle_and_give_the_same_samples_in_workers(tmp_path):
    write_moving_mnist(tmp_path, test_sequences=4)
    for dataset in (MovingMNIST(tmp_path, 'train', num_train_sequences=4), MovingMNIST(tmp_path, 'test')):
        clone = pickle.loads(pickle.dumps(dataset))
        assert torch.equal(clone[2][1], dataset[2][1])
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
        batches = [x for x, _ in loader]
        expected = torch.stack([dataset[i][0] for i in range(4)])
        assert torch.equal(torch.cat(batches), expected)


def test_registry_builds_from_the_task_spec(tmp_path):
    write_moving_mnist(tmp_path)
    train = build_dataset(PAPER_TASKS['mmnist'], 'train', tmp_path, dict(num_train_sequences=5, seed=3))
    assert isinstance(train, MovingMNIST) and len(train) == 5 and train.seed == 3
    assert train[0][0].shape == (10, 1, 64, 64) and train[0][1].shape == (10, 1, 64, 64)
    assert len(build_dataset(PAPER_TASKS['mmnist'], 'test', tmp_path)) == 3


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'moving_mnist/train-images-idx3-ubyte.gz not found.*tools/prepare_data/download_mmnist.sh'):
        MovingMNIST(tmp_path, 'train')
    with pytest.raises(FileNotFoundError, match=r'moving_mnist/mnist_test_seq.npy not found.*download_mmnist.sh'):
        MovingMNIST(tmp_path, 'val')


def test_bad_idx_files_name_the_file_and_what_was_expected(tmp_path):
    folder = tmp_path / 'moving_mnist'
    folder.mkdir()
    path = folder / 'train-images-idx3-ubyte.gz'
    write_idx_images(path, np.zeros((3, 28, 28), np.uint8), magic=2049)
    with pytest.raises(ValueError, match=r'train-images-idx3-ubyte.gz: idx magic number is 2049, expected 2051'):
        MovingMNIST(tmp_path, 'train')
    write_idx_images(path, np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r'idx3-ubyte.gz: idx header gives 3 images of 32×32, expected N ≥ 1 images of 28×28'):
        MovingMNIST(tmp_path, 'train')
    with gzip.open(path, 'wb') as file:
        file.write(np.array([2051, 3, 28, 28], '>i4').tobytes() + bytes(100))
    with pytest.raises(ValueError, match=r'3 images of 28×28 = 2352 bytes, the file holds 100'):
        MovingMNIST(tmp_path, 'train')
    path.write_bytes(b'not gzip at all')
    with pytest.raises(ValueError, match=r'idx3-ubyte.gz: not a readable gzip file'):
        MovingMNIST(tmp_path, 'train')


def test_bad_fixed_sets_name_the_file_and_the_expected_shape_or_dtype(tmp_path):
    folder = tmp_path / 'moving_mnist'
    folder.mkdir()
    np.save(folder / 'mnist_test_seq.npy', np.zeros((20, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"mnist_test_seq.npy: 'array' has shape \(20, 3, 32, 32\), expected \(T, N, 64, 64\)"):
        MovingMNIST(tmp_path, 'test')
    np.save(folder / 'mnist_test_seq.npy', np.zeros((20, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match=r'mnist_test_seq.npy: dtype is float32, expected uint8'):
        MovingMNIST(tmp_path, 'test')
