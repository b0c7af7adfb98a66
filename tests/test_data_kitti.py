import pickle

import h5py
import numpy as np
import pytest

from openstl_unistd.datasets.fixtures.kitti import write_kitti
from openstl_unistd.datasets.kitti import KITTI
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def openstl_starts(sources, length):
    """OpenSTL's backward scan over the frames, written out literally (the reference)."""
    starts, index = [], len(sources) - 1
    while index >= length - 1:
        if sources[index] == sources[index - length + 1]:
            starts.append(index - length + 1)
            index -= length - 1
        index -= 1
    return sorted(starts)


@pytest.mark.parametrize('legacy', [False, True], ids=['hickle5', 'hickle2-legacy'])
def test_reads_hickle_files_in_model_range_and_denormalizes_to_the_file(tmp_path, legacy):
    written = write_kitti(tmp_path, legacy=legacy)
    frames, sources = written['train']['X'], written['train']['sources']
    dataset = KITTI(tmp_path, 'train')
    assert dataset.frames_key == ('data_0' if legacy else 'data')
    assert dataset.starts.tolist() == openstl_starts(sources, 20) == [7, 28]
    for index, start in enumerate(dataset.starts):
        x, y = dataset[index]
        assert x.shape == (10, 3, 128, 160) and y.shape == (10, 3, 128, 160) and x.dtype.is_floating_point
        assert 0 <= x.min() and max(x.max(), y.max()) <= 1
        expected = frames[start:start + 20].transpose(0, 3, 1, 2)
        assert np.array_equal(denormalize(dataset, x.numpy()), expected[:10])
        assert np.array_equal(denormalize(dataset, y.numpy()), expected[10:])
        assert len(set(sources[start:start + 20])) == 1 and dataset.source_of(index) == sources[start]


def test_each_split_reads_its_own_file_and_test_is_kitti_not_caltech(tmp_path):
    written = write_kitti(tmp_path)
    for split, count in (('train', 2), ('val', 1), ('test', 2)):
        dataset = KITTI(tmp_path, split)
        assert len(dataset) == count == len(openstl_starts(written[split]['sources'], 20))
        start = dataset.starts[-1]
        np.testing.assert_array_equal(dataset.frames(count - 1) * 255,
                                      written[split]['X'][start:start + 20].transpose(0, 3, 1, 2))
    assert KITTI(tmp_path, 'test').source_of(1) == 'residential-2011_09_26_drive_0079_sync'


def test_openstl_windows_never_cross_recordings_for_any_horizon(tmp_path):
    recordings = {'train': [('a', 7), ('b', 3), ('c', 12), ('d', 5), ('e', 6)]}
    written = write_kitti(tmp_path, recordings)
    sources = written['train']['sources']
    for t_in, t_out in ((1, 1), (2, 3), (3, 3), (4, 1)):
        dataset = KITTI(tmp_path, 'train', input_frames=t_in, output_frames=t_out)
        assert dataset.starts.tolist() == openstl_starts(sources, t_in + t_out)
        for start in dataset.starts:
            assert len(set(sources[start:start + t_in + t_out])) == 1


def test_stride_option_starts_a_window_every_k_frames_of_each_recording(tmp_path):
    write_kitti(tmp_path, {'train': [('a', 7), ('b', 3), ('c', 9)]})
    dataset = KITTI(tmp_path, 'train', input_frames=2, output_frames=2, stride=2)
    assert dataset.starts.tolist() == [0, 2, 10, 12, 14]
    assert len(KITTI(tmp_path, 'train', input_frames=2, output_frames=2, stride=1)) == 4 + 0 + 6
    with pytest.raises(ValueError, match='stride must be ≥ 1'):
        KITTI(tmp_path, 'train', stride=0)


def test_registry_builds_the_paper_task_and_the_dataset_pickles_without_handles(tmp_path):
    written = write_kitti(tmp_path)
    dataset = build_dataset(PAPER_TASKS['kitti'], 'test', tmp_path, dict(stride=5))
    assert isinstance(dataset, KITTI) and dataset.starts.tolist() == [0, 20, 25]
    x, _ = dataset[2]
    np.testing.assert_array_equal(x.numpy() * 255, written['test']['X'][25:35].transpose(0, 3, 1, 2))
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._files._files == {} and np.array_equal(clone[2][0].numpy(), x.numpy())


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'kitti_hkl not found.*tools/prepare_data/download_kitti.sh'):
        KITTI(tmp_path, 'train')
    write_kitti(tmp_path, {'train': [('a', 20)]})
    with pytest.raises(FileNotFoundError, match=r'kitti_hkl/X_val.hkl not found.*download_kitti.sh'):
        KITTI(tmp_path, 'val')
    (tmp_path / 'kitti_hkl/sources_train.hkl').unlink()
    with pytest.raises(FileNotFoundError, match=r'kitti_hkl/sources_train.hkl not found'):
        KITTI(tmp_path, 'train')


def test_bad_content_names_file_key_expected_and_actual(tmp_path):
    write_kitti(tmp_path, {'train': [('a', 20)]}, legacy=True)
    path = tmp_path / 'kitti_hkl/X_train.hkl'
    with h5py.File(path, 'w') as handle:
        handle['data_0'] = np.zeros((20, 160, 128, 3), np.uint8)
    with pytest.raises(ValueError, match=r"X_train.hkl: 'data_0' has shape \(20, 160, 128, 3\), expected \(N, 128, 160, 3\)"):
        KITTI(tmp_path, 'train')
    with h5py.File(path, 'w') as handle:
        handle['data_0'] = np.zeros((20, 128, 160, 3), np.float32)
    with pytest.raises(ValueError, match=r"X_train.hkl: 'data_0' has dtype float32, expected uint8"):
        KITTI(tmp_path, 'train')
    with h5py.File(path, 'w') as handle:
        handle['frames'] = np.zeros((20, 128, 160, 3), np.uint8)
    with pytest.raises(ValueError, match=r"X_train.hkl: no hickled object found: expected a root key \['data_0', 'data'\], found \['frames'\]"):
        KITTI(tmp_path, 'train')
    with h5py.File(path, 'w') as handle:
        handle['data_0'] = np.zeros((19, 128, 160, 3), np.uint8)
    with pytest.raises(ValueError, match=r'sources_train.hkl: holds 20 source names but .*X_train.hkl holds 19 frames'):
        KITTI(tmp_path, 'train')


def test_recordings_shorter_than_the_window_give_no_sample(tmp_path):
    write_kitti(tmp_path, {'train': [('a', 12), ('b', 25)], 'val': [('a', 12), ('b', 19)]})
    assert KITTI(tmp_path, 'train').starts.tolist() == [12 + 5]
    with pytest.raises(ValueError, match=r'sequences of 19 frames, fewer than input_frames \+ output_frames = 10 \+ 10'):
        KITTI(tmp_path, 'val')
