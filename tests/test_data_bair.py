import pickle

import numpy as np
import pytest
import torch
from tfrecord.reader import tfrecord_loader
from tfrecord.tools.tfrecord2idx import create_index
from tfrecord.writer import TFRecordWriter

from openstl_unistd.datasets.bair import BAIR, record_offsets
from openstl_unistd.datasets.fixtures.bair import episode_features, write_bair_npy, write_bair_tfrecord
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def as_file_frames(dataset, x, y):
    """Model-range ``x, y`` → the file's uint8 values as ``(T + T', 64, 64, 3)``."""
    return denormalize(dataset, torch.cat([x, y]).numpy()).transpose(0, 2, 3, 1)


def test_tfrecords_give_every_window_of_every_episode_exactly(tmp_path):
    written = write_bair_tfrecord(tmp_path, {'train': (3, 2), 'test': (2,)})
    dataset = BAIR(tmp_path, 'train')
    assert len(dataset) == 5 * 19  # 30-frame episodes, 12-frame windows at stride 1 (OpenSTL)
    assert {tuple(w) for w in dataset.windows.tolist()} == {(e, s) for e in range(5) for s in range(19)}
    for index in (0, 18, 19, 40, len(dataset) - 1):
        x, y = dataset[index]
        assert x.shape == (2, 3, 64, 64) and y.shape == (10, 3, 64, 64) and x.dtype.is_floating_point
        assert 0 <= min(x.min(), y.min()) and max(x.max(), y.max()) <= 1
        episode, start = dataset.window(index)
        assert np.array_equal(as_file_frames(dataset, x, y), written['train'][episode, start:start + 12])


def test_val_reads_the_test_records_and_episodes_never_mix(tmp_path):
    written = write_bair_tfrecord(tmp_path, {'train': (2,), 'test': (1, 2)})
    for split in ('val', 'test'):
        dataset = BAIR(tmp_path, split, input_frames=3, output_frames=4)
        assert len(dataset) == 3 * (30 - 7 + 1) and len(dataset.files) == 2
        for index in range(0, len(dataset), 5):
            x, y = dataset[index]
            episode, start = dataset.window(index)
            assert np.array_equal(as_file_frames(dataset, x, y), written['test'][episode, start:start + 7])


def test_record_offsets_and_features_agree_with_the_tfrecord_package(tmp_path):
    written = write_bair_tfrecord(tmp_path, {'train': (3,), 'test': (1,)})
    path = tmp_path / 'softmotion30_44k/train/traj_1_to_3.tfrecords'
    create_index(str(path), str(tmp_path / 'index'))
    assert record_offsets(path) == np.loadtxt(tmp_path / 'index', dtype=np.int64)[:, 0].tolist()
    records = list(tfrecord_loader(str(path), None, ['29/image_aux1/encoded', '29/action']))
    dataset = BAIR(tmp_path, 'train', input_frames=20, output_frames=10)
    assert len(dataset) == 3 and len(records) == 3
    for episode, record in enumerate(records):
        last = np.frombuffer(record['29/image_aux1/encoded'], np.uint8).reshape(64, 64, 3)
        assert np.array_equal(as_file_frames(dataset, *dataset[episode])[-1], last)
        assert np.array_equal(written['train'][episode, 29], last) and record['29/action'].shape == (4,)


def test_npy_gives_one_clip_per_episode_random_in_train_middle_otherwise(tmp_path):
    written = write_bair_npy(tmp_path, sizes=(3, 2, 4))
    for split, count in (('val', 2), ('test', 4)):
        dataset = BAIR(tmp_path, split, format='npy')
        assert len(dataset) == count
        x, y = dataset[count - 1]
        assert np.array_equal(as_file_frames(dataset, x, y), written[split][count - 1, 9:21])  # (30 - 12 + 1) // 2
    train = BAIR(tmp_path, 'train', format='npy')
    assert len(train) == 3
    torch.manual_seed(0)
    starts = []
    for _ in range(12):
        clip = as_file_frames(train, *train[1])
        matches = [s for s in range(19) if np.array_equal(clip, written['train'][1, s:s + 12])]
        assert len(matches) == 1
        starts += matches
    assert len(set(starts)) > 1
    assert len(BAIR(tmp_path, 'test', format='npy', clips='all')) == 4 * 19


def test_registry_builds_both_layouts_and_the_dataset_pickles_without_handles(tmp_path):
    write_bair_tfrecord(tmp_path)
    write_bair_npy(tmp_path)
    dataset = build_dataset(PAPER_TASKS['bair'], 'test', tmp_path)
    assert isinstance(dataset, BAIR) and dataset.format == 'tfrecord' and dataset[0][1].shape == (10, 3, 64, 64)
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._files._files == {} and torch.equal(clone[7][0], dataset[7][0])
    npy = build_dataset(PAPER_TASKS['bair'], 'val', tmp_path, dict(format='npy'))
    assert len(npy) == 2 and len(pickle.dumps(npy)) < 10_000  # the memory map is not pickled
    with pytest.raises(ValueError, match=r"unknown format 'hdf5'"):
        BAIR(tmp_path, 'test', format='hdf5')
    with pytest.raises(ValueError, match=r"unknown clips 'middle'"):
        BAIR(tmp_path, 'test', clips='middle')


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'softmotion30_44k/train not found.*tools/prepare_data/download_bair.sh'):
        BAIR(tmp_path, 'train')
    (tmp_path / 'softmotion30_44k/test').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'no \*.tfrecords files in .*softmotion30_44k/test.*download_bair.sh'):
        BAIR(tmp_path, 'val')
    with pytest.raises(FileNotFoundError, match=r'bair/test.npy not found.*download_bair.sh'):
        BAIR(tmp_path, 'test', format='npy')


def test_bad_content_names_file_key_expected_and_actual(tmp_path):
    folder = tmp_path / 'softmotion30_44k/train'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    features = episode_features(rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8), rng)
    features['0/image_aux1/encoded'] = (bytes(100), 'byte')
    writer = TFRecordWriter(str(folder / 'traj_0_to_0.tfrecords'))
    writer.write(features)
    writer.close()
    with pytest.raises(ValueError, match=r"traj_0_to_0.tfrecords: record 0: '0/image_aux1/encoded' holds \[100\] bytes, expected \[12288\]"):
        BAIR(tmp_path, 'train')

    features = episode_features(rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8), rng)
    short = {k: v for k, v in features.items() if not k.startswith('25/')}
    writer = TFRecordWriter(str(folder / 'traj_0_to_0.tfrecords'))
    writer.write(features)
    writer.write(short)
    writer.close()
    dataset = BAIR(tmp_path, 'train')
    with pytest.raises(ValueError, match=r"record at byte \d+ has no feature '25/image_aux1/encoded'; every episode must hold 30 frames"):
        dataset[19 + 14]

    with open(folder / 'traj_0_to_0.tfrecords', 'ab') as handle:
        handle.write(np.uint64(1000).tobytes() + bytes(20))
    with pytest.raises(ValueError, match=r'traj_0_to_0.tfrecords: record 2 at byte \d+ needs 1016 bytes but the file ends'):
        BAIR(tmp_path, 'train')

    (tmp_path / 'bair').mkdir()
    np.save(tmp_path / 'bair/train.npy', np.zeros((2, 30, 3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"train.npy: 'array' has shape \(2, 30, 3, 64, 64\), expected \(N, T, 64, 64, 3\)"):
        BAIR(tmp_path, 'train', format='npy')
    np.save(tmp_path / 'bair/train.npy', np.zeros((2, 8, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r'sequences of 8 frames, fewer than input_frames \+ output_frames = 2 \+ 10'):
        BAIR(tmp_path, 'train', format='npy')
