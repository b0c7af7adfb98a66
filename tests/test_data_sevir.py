import pickle

import h5py
import numpy as np
import pytest

from openstl_unistd.datasets import sevir
from openstl_unistd.datasets.fixtures.sevir import write_sevir_earthformer, write_sevir_predbench
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.datasets.sevir import SEVIR
from openstl_unistd.tasks import PAPER_TASKS

from .h5_recording import RecordingFile
from .physical_values import denormalize


def frames_of(event, start, count):
    """The file's frames ``start … start + count - 1`` of an event (H, W, T) as (T, 1, H, W)."""
    return event[:, :, start:start + count].transpose(2, 0, 1)[:, None]


@pytest.fixture(scope='module')
def earthformer_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('sevir')
    return root, write_sevir_earthformer(root)


def test_earthformer_split_by_date_with_earthformer_bounds_and_filters(earthformer_root):
    root, written = earthformer_root
    seen = []
    for split in ('train', 'val', 'test'):
        dataset = SEVIR(root, split)
        expected = sorted(e for e, s in written['split'].items() if s == split)
        assert dataset.event_ids == expected
        seen += dataset.event_ids
    # 2019-01-01 00:00 is train and 2019-06-01 00:00 is val (time_utc ≤ bound), as Earthformer splits
    assert SEVIR(root, 'train').event_ids == ['S800001', 'S840001']
    assert SEVIR(root, 'val').event_ids == ['S840002', 'S840003']
    assert SEVIR(root, 'test').event_ids == ['S840004', 'S850001']
    assert 'R18122310217451' not in seen and 'S850009' not in seen  # pct_missing > 0; id with two VIL rows


def test_events_are_cut_into_25_frame_windows_at_stride_12(earthformer_root):
    root, written = earthformer_root
    test = SEVIR(root, 'test')
    assert len(test) == 6 and test.windows.tolist() == [[0, 0], [0, 12], [0, 24], [1, 0], [1, 12], [1, 24]]
    for index, (event, start) in enumerate(test.windows):
        x, y = test[index]
        assert x.shape == (13, 1, 384, 384) and y.shape == (12, 1, 384, 384) and x.dtype.is_floating_point
        assert 0 <= x.min() and x.max() <= 1
        vil = written['vil'][test.event_ids[event]]
        np.testing.assert_array_equal(denormalize(test, x.numpy()).round(), frames_of(vil, start, 13))
        np.testing.assert_array_equal(denormalize(test, y.numpy()).round(), frames_of(vil, start + 13, 12))
        np.testing.assert_allclose(y.numpy(), frames_of(vil, start + 13, 12) / 255, atol=1e-7)


def test_shorter_horizons_take_the_first_frames_of_each_window(earthformer_root):
    root, written = earthformer_root
    dataset = SEVIR(root, 'train', input_frames=5, output_frames=5)
    x, y = dataset[1]
    vil = written['vil']['S800001']
    np.testing.assert_array_equal(denormalize(dataset, y.numpy()).round(), frames_of(vil, 17, 5))
    dense = SEVIR(root, 'train', input_frames=5, output_frames=5, seq_len=10, stride=10)
    assert dense.windows[:, 1].tolist() == [0, 10, 20, 30] * 2
    with pytest.raises(ValueError, match=r'seq_len=25 holds sequences of 25 frames, fewer than .* = 13 \+ 13'):
        SEVIR(root, 'train', output_frames=13)


def test_split_dates_are_options(earthformer_root):
    root, _ = earthformer_root
    assert SEVIR(root, 'train', train_val_split='2018-12-31').event_ids == ['S800001']
    assert SEVIR(root, 'test', train_test_split='2019-06-30').event_ids == ['S850001']


def test_earthformer_reads_one_window_slice_per_sample(earthformer_root, monkeypatch):
    root, _ = earthformer_root
    reads = []
    monkeypatch.setattr(sevir, 'open_h5', lambda path: RecordingFile(path, reads))
    dataset = SEVIR(root, 'val')
    dataset[4]  # event S840003: row 2 of its file, window 12 … 36
    assert len(reads) == 1
    row, height, width, time = reads[0]
    assert row == 2 and height == width == slice(None) and time == slice(12, 37)
    assert all(not isinstance(v, np.ndarray) or v.nbytes < 384 * 384 for v in vars(dataset).values())


def test_predbench_npy_per_event_memory_mapped(tmp_path, monkeypatch):
    written = write_sevir_predbench(tmp_path, events=(3, 1, 2))
    loads = []
    real_load = np.load

    def recording_load(path, *args, **kwargs):
        loads.append(kwargs.get('mmap_mode'))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, 'load', recording_load)
    for split, count in (('train', 3), ('val', 1), ('test', 2)):
        dataset = SEVIR(tmp_path, split, format='predbench')
        assert len(dataset) == 3 * count and dataset.event_ids == sorted(written[split])
        x, y = dataset[3 * count - 1]
        event = written[split][dataset.event_ids[-1]][0]
        np.testing.assert_array_equal(denormalize(dataset, x.numpy()).round(), frames_of(event, 24, 13))
        np.testing.assert_array_equal(denormalize(dataset, y.numpy()).round(), frames_of(event, 37, 12))
    assert loads and set(loads) == {'r'}


def test_dataset_pickles_for_workers_after_reading(earthformer_root):
    root, _ = earthformer_root
    dataset = SEVIR(root, 'test')
    x, _ = dataset[2]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dataset))[2][0].numpy(), x.numpy())


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'sevir/CATALOG.csv not found.*tools/prepare_data/download_sevir.sh'):
        SEVIR(tmp_path, 'train')
    with pytest.raises(FileNotFoundError, match=r'sevir/val not found.*download_sevir.sh'):
        SEVIR(tmp_path, 'val', format='predbench')
    write_sevir_earthformer(tmp_path)
    missing = tmp_path / 'sevir/data/vil/2019/SEVIR_VIL_STORMEVENTS_2019_0701_1231.h5'
    missing.unlink()
    SEVIR(tmp_path, 'train')  # only the files of the split's events are needed
    with pytest.raises(FileNotFoundError, match=rf'{missing} not found.*download_sevir.sh'):
        SEVIR(tmp_path, 'test')


def test_wrong_catalog_keys_or_shapes_name_file_key_expected_and_actual(tmp_path):
    written = write_sevir_earthformer(tmp_path)
    catalog_path = tmp_path / 'sevir/CATALOG.csv'
    written['catalog'].drop(columns=['pct_missing']).to_csv(catalog_path, index=False)
    with pytest.raises(ValueError, match=r"CATALOG.csv: column\(s\) \['pct_missing'\] missing; expected .*found"):
        SEVIR(tmp_path, 'train')
    written['catalog'].assign(time_utc='yesterday').to_csv(catalog_path, index=False)
    with pytest.raises(ValueError, match=r"CATALOG.csv: column 'time_utc' must hold dates"):
        SEVIR(tmp_path, 'train')
    catalog = written['catalog'].copy()
    catalog.loc[catalog['id'] == 'S850001', 'file_index'] = 7
    catalog.to_csv(catalog_path, index=False)
    with pytest.raises(ValueError, match=r"2019_0701_1231.h5: CATALOG.csv names file_index 7 but 'vil' holds 2 events"):
        SEVIR(tmp_path, 'test')
    written['catalog'].to_csv(catalog_path, index=False)
    vil_file = tmp_path / 'sevir/data/vil/2018/SEVIR_VIL_STORMEVENTS_2018_0701_1231.h5'
    with h5py.File(vil_file, 'w') as f:
        f.create_dataset('ir069', data=np.zeros((2, 192, 192, 49), dtype=np.int16))
    with pytest.raises(ValueError, match=rf"{vil_file}: key 'vil' is missing; found \['ir069'\]"):
        SEVIR(tmp_path, 'train')
    with h5py.File(vil_file, 'w') as f:
        f.create_dataset('vil', data=np.zeros((2, 192, 192, 49), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"'vil' has shape \(2, 192, 192, 49\), expected \(N, 384, 384, T\)"):
        SEVIR(tmp_path, 'train')
    (tmp_path / 'sevir/train').mkdir()
    np.save(tmp_path / 'sevir/train/S1.npy', np.zeros((384, 384, 49), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"S1.npy: 'array' has shape \(384, 384, 49\), expected \(1, 384, 384, T\)"):
        SEVIR(tmp_path, 'train', format='predbench')


def test_registry_builds_from_the_task_spec_and_checks_options(earthformer_root):
    root, _ = earthformer_root
    dataset = build_dataset(PAPER_TASKS['sevir'], 'val', root)
    assert isinstance(dataset, SEVIR) and len(dataset) == 6
    x, y = dataset[0]
    assert x.shape == (13, 1, 384, 384) and y.shape == (12, 1, 384, 384)
    with pytest.raises(ValueError, match=r"unknown format 'npz'"):
        build_dataset(PAPER_TASKS['sevir'], 'val', root, dict(format='npz'))
    with pytest.raises(KeyError, match=r"data options of loader 'sevir': unknown key\(s\) \['start_date'\]"):
        build_dataset(PAPER_TASKS['sevir'], 'val', root, dict(start_date='2018-01-01'))

