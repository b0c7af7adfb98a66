import json
import pickle

import h5py
import numpy as np
import pytest

from openstl_unistd.datasets import traffic4cast
from openstl_unistd.datasets.fixtures.traffic4cast import DEFAULT_DAYS, write_traffic4cast
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.datasets.traffic4cast import Traffic4Cast, centre_crop_origin
from openstl_unistd.tasks import PAPER_TASKS

from .h5_recording import RecordingFile
from .physical_values import denormalize

TOP, LEFT = 183, 162  # (495 - 128) // 2, (436 - 112) // 2


def cropped(array, start, count):
    """The file's frames ``start … start + count - 1``, centre 128 × 112, as (T, C, H, W)."""
    return array[start:start + count, TOP:TOP + 128, LEFT:LEFT + 112].transpose(0, 3, 1, 2)


@pytest.fixture(scope='module')
def t4c_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('t4c')
    return root, write_traffic4cast(root, frames=25)


def test_windows_are_centre_crops_of_consecutive_frames_in_model_range(t4c_root):
    root, written = t4c_root
    assert centre_crop_origin(495, 436) == (TOP, LEFT)
    train = Traffic4Cast(root, 'train')
    days = list(DEFAULT_DAYS['train'])
    assert len(train) == 4 and train.windows.tolist() == [[0, 0], [0, 10], [1, 0], [1, 10]]
    for index, (day, start) in enumerate(train.windows):
        x, y = train[index]
        assert x.shape == (9, 8, 128, 112) and y.shape == (3, 8, 128, 112) and x.dtype.is_floating_point
        assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1
        array = written['train'][days[day]]
        np.testing.assert_array_equal(denormalize(train, x.numpy()).round(), cropped(array, start, 9))
        np.testing.assert_array_equal(denormalize(train, y.numpy()).round(), cropped(array, start + 9, 3))
        np.testing.assert_allclose(x.numpy(), cropped(array, start, 9) / 255, atol=1e-7)


def test_each_split_reads_its_predbench_list_only(t4c_root):
    root, written = t4c_root
    for split in ('train', 'val', 'test'):
        dataset = Traffic4Cast(root, split)
        expected = [str(root / 'Traffic4Cast2021' / day) for day in DEFAULT_DAYS[split]]
        assert dataset.paths == expected and len(dataset) == 2 * len(expected)
    test = Traffic4Cast(root, 'test')
    (day,) = DEFAULT_DAYS['test']
    np.testing.assert_array_equal(denormalize(test, test[1][1].numpy()).round(), cropped(written['test'][day], 19, 3))


def test_window_starts_follow_predbench_exclusive_bound_and_stride(tmp_path):
    val_only = {'val': DEFAULT_DAYS['val']}
    write_traffic4cast(tmp_path / 'a', days=val_only, frames=22)  # range(0, 22 - 12, 10) = [0], not [0, 10]
    assert Traffic4Cast(tmp_path / 'a', 'val').windows.tolist() == [[0, 0]]
    write_traffic4cast(tmp_path / 'b', days=val_only, frames=25)
    assert Traffic4Cast(tmp_path / 'b', 'val', stride=5).windows[:, 1].tolist() == [0, 5, 10]
    short = Traffic4Cast(tmp_path / 'b', 'val', input_frames=4, output_frames=2, stride=6)
    assert short.windows[:, 1].tolist() == [0, 6, 12, 18]


def test_a_full_day_gives_28_windows(tmp_path):
    write_traffic4cast(tmp_path, frames=1)
    for day in DEFAULT_DAYS['train']:  # unwritten chunks take no space: a 288-frame day costs nothing
        with h5py.File(tmp_path / 'Traffic4Cast2021' / day, 'w') as f:
            f.create_dataset('array', shape=(288, 495, 436, 8), dtype=np.uint8, chunks=(1, 495, 436, 8),
                             compression='gzip')
    train = Traffic4Cast(tmp_path, 'train')
    assert len(train) == 2 * 28 and train.windows[:28, 1].tolist() == list(range(0, 280, 10))


def test_only_the_window_and_the_crop_are_read(t4c_root, monkeypatch):
    root, _ = t4c_root
    reads = []
    monkeypatch.setattr(traffic4cast, 'open_h5', lambda path: RecordingFile(path, reads))
    dataset = Traffic4Cast(root, 'train')
    dataset[1]
    assert reads == [(slice(10, 22), slice(TOP, TOP + 128), slice(LEFT, LEFT + 112), slice(None))]
    frame_bytes = 495 * 436 * 8
    assert all(not isinstance(v, np.ndarray) or v.nbytes < frame_bytes for v in vars(dataset).values())


def test_dataset_pickles_for_workers_after_reading(t4c_root):
    root, _ = t4c_root
    dataset = Traffic4Cast(root, 'val')
    x, _ = dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(clone[0][0].numpy(), x.numpy())


def test_missing_lists_and_days_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'annotations/traffic4cast2021/traffic4cast2021_train.json not found'
                                                r'.*tools/prepare_data/download_traffic4cast.sh'):
        Traffic4Cast(tmp_path, 'train')
    write_traffic4cast(tmp_path, frames=13, days={'train': DEFAULT_DAYS['train']})
    missing = tmp_path / 'Traffic4Cast2021' / DEFAULT_DAYS['train'][1]
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=rf'{missing} not found.*download_traffic4cast.sh'):
        Traffic4Cast(tmp_path, 'train')
    kept = Traffic4Cast(tmp_path, 'train', skip_missing=True)
    assert kept.paths == [str(tmp_path / 'Traffic4Cast2021' / DEFAULT_DAYS['train'][0])] and len(kept) == 1


def test_wrong_lists_keys_or_shapes_name_file_key_expected_and_actual(tmp_path):
    write_traffic4cast(tmp_path, frames=1)
    day = tmp_path / 'Traffic4Cast2021' / DEFAULT_DAYS['val'][0]
    with h5py.File(day, 'w') as f:
        f.create_dataset('data', data=np.zeros((1, 495, 436, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=rf"{day}: key 'array' is missing; found \['data'\]"):
        Traffic4Cast(tmp_path, 'val')
    with h5py.File(day, 'w') as f:
        f.create_dataset('array', data=np.zeros((1, 436, 495, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"'array' has shape \(1, 436, 495, 8\), expected \(T, 495, 436, 8\)"):
        Traffic4Cast(tmp_path, 'val')
    listing = tmp_path / 'annotations/traffic4cast2021/traiifc4cast2021_test.json'
    listing.write_text(json.dumps({'days': []}))
    with pytest.raises(ValueError, match=r'traiifc4cast2021_test.json: expected a JSON list of day files.*got dict'):
        Traffic4Cast(tmp_path, 'test')


def test_registry_builds_from_the_task_spec_and_checks_options(t4c_root):
    root, _ = t4c_root
    dataset = build_dataset(PAPER_TASKS['traffic4cast'], 'test', root, dict(stride=5))
    assert isinstance(dataset, Traffic4Cast) and len(dataset) == 3
    x, y = dataset[0]
    assert x.shape == (9, 8, 128, 112) and y.shape == (3, 8, 128, 112)
    with pytest.raises(KeyError, match=r"data options of loader 'traffic4cast': unknown key\(s\) \['crop'\]"):
        build_dataset(PAPER_TASKS['traffic4cast'], 'test', root, dict(crop=64))
