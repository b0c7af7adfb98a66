import pickle

import h5py
import numpy as np
import pytest
import torch

from openstl_unistd.datasets.cityscapes import Cityscapes
from openstl_unistd.datasets.fixtures.cityscapes import append_video, open_shard, write_cityscapes
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def as_file_frames(dataset, x, y):
    """Model-range ``x, y`` → the file's uint8 values as ``(T + T', 128, 128, 3)``."""
    return denormalize(dataset, torch.cat([x, y]).numpy()).transpose(0, 2, 3, 1)


def test_train_windows_start_every_stride_frames_inside_each_video(tmp_path):
    written = write_cityscapes(tmp_path)  # train videos of 30, 16 and 5 frames
    dataset = Cityscapes(tmp_path, 'train')
    assert dataset.windows.tolist() == [[0, 0], [0, 10], [0, 20], [1, 0]]
    for index in range(len(dataset)):
        x, y = dataset[index]
        assert x.shape == (2, 3, 128, 128) and y.shape == (5, 3, 128, 128) and x.dtype.is_floating_point
        assert 0 <= min(x.min(), y.min()) and max(x.max(), y.max()) <= 1
        _, name, start = dataset.window(index)
        video = written['train'][int(name)]
        assert np.array_equal(as_file_frames(dataset, x, y), video[start:start + 7])
    assert Cityscapes(tmp_path, 'train', stride=5).windows.tolist() == (
        [[0, s] for s in (0, 5, 10, 15, 20)] + [[1, 0], [1, 5]])


def test_test_split_takes_the_first_window_of_each_video_and_val_slides(tmp_path):
    written = write_cityscapes(tmp_path, {'val': (20,), 'test': (30, 9, 6)})
    test = Cityscapes(tmp_path, 'test')
    assert len(test) == 2 and test.windows.tolist() == [[0, 0], [1, 0]]  # the 6-frame video is too short
    for index in range(2):
        assert np.array_equal(as_file_frames(test, *test[index]), written['test'][index][:7])
    val = Cityscapes(tmp_path, 'val', input_frames=3, output_frames=3)
    assert val.windows.tolist() == [[0, 0], [0, 10]]
    assert np.array_equal(as_file_frames(val, *val[1]), written['val'][0][10:16])


def test_all_shards_are_read_and_videos_follow_numeric_order(tmp_path):
    folder = tmp_path / 'cityscapes/Cityscapes128_h5/train'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (7, 128, 128, 3), dtype=np.uint8) for _ in range(13)]
    with open_shard(folder / 'shard_0001.hdf5') as handle:
        for index in range(11):
            append_video(handle, index, videos[index])
    with open_shard(folder / 'shard_0002.hdf5') as handle:
        for index in range(2):
            append_video(handle, index, videos[11 + index])
    dataset = Cityscapes(tmp_path, 'train')
    assert len(dataset) == 13
    assert [name for _, name in dataset.videos] == [str(i) for i in range(11)] + ['0', '1']
    for index in range(13):
        assert np.array_equal(as_file_frames(dataset, *dataset[index]), videos[index])


def test_registry_builds_the_paper_task_and_the_dataset_pickles_without_handles(tmp_path):
    written = write_cityscapes(tmp_path)
    dataset = build_dataset(PAPER_TASKS['cityscapes'], 'test', tmp_path, dict(stride=5))
    assert isinstance(dataset, Cityscapes) and len(dataset) == 2
    x, y = dataset[1]
    assert np.array_equal(as_file_frames(dataset, x, y), written['test'][1][:7])
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._files._files == {} and torch.equal(clone[1][1], y)
    with pytest.raises(ValueError, match='stride must be ≥ 1'):
        Cityscapes(tmp_path, 'train', stride=0)


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'Cityscapes128_h5/train not found.*tools/prepare_data/download_cityscapes.sh'):
        Cityscapes(tmp_path, 'train')
    (tmp_path / 'cityscapes/Cityscapes128_h5/val').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'no \*.hdf5 shards in .*Cityscapes128_h5/val.*download_cityscapes.sh'):
        Cityscapes(tmp_path, 'val')


def test_bad_content_names_file_key_expected_and_actual(tmp_path):
    write_cityscapes(tmp_path, {'train': (8, 8)})
    path = tmp_path / 'cityscapes/Cityscapes128_h5/train/shard_0001.hdf5'
    with h5py.File(path, 'a') as handle:
        del handle['1/6']
        handle['1/6'] = np.zeros((128, 128), np.uint8)
    dataset = Cityscapes(tmp_path, 'train')
    with pytest.raises(ValueError, match=r"shard_0001.hdf5: '1/6' has shape \(128, 128\), expected \(128, 128, 3\)"):
        dataset[1]
    dataset._files.get(str(path)).close()  # the dataset holds the shard open read-only
    with h5py.File(path, 'a') as handle:
        del handle['1/0']
        handle['1/0'] = np.zeros((128, 128, 3), np.float32)
    with pytest.raises(ValueError, match=r"shard_0001.hdf5: '1/0' has dtype float32, expected uint8"):
        Cityscapes(tmp_path, 'train')
    with h5py.File(path, 'a') as handle:
        handle.move('1/0', '1/8')
    with pytest.raises(ValueError, match=r"video '1' has frames \['1', .*'8'\], expected datasets named '0'..'7'"):
        Cityscapes(tmp_path, 'train')
    with h5py.File(path, 'a') as handle:
        del handle['1']
    with pytest.raises(ValueError, match=r"shard_0001.hdf5: video '1' is listed in 'len' but group '1' is missing"):
        Cityscapes(tmp_path, 'train')
    with h5py.File(path, 'a') as handle:
        del handle['len']
    with pytest.raises(ValueError, match=r"shard_0001.hdf5: group 'len' is missing; expected the Cityscapes128_h5 layout"):
        Cityscapes(tmp_path, 'train')


def test_videos_shorter_than_the_window_are_an_error_when_none_is_long_enough(tmp_path):
    write_cityscapes(tmp_path, {'train': (5, 6)})
    with pytest.raises(ValueError, match=r'sequences of 6 frames, fewer than input_frames \+ output_frames = 2 \+ 5'):
        Cityscapes(tmp_path, 'train')
    assert len(Cityscapes(tmp_path, 'train', input_frames=2, output_frames=4)) == 1
