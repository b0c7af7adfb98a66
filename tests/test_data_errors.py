"""Bad input stops the data layer with an error that names the culprit (file, task, split, sample, key,
expected vs actual), never a bare numpy/h5py/xarray error or silently NaN output. One test per message."""
import json
import re

import h5py
import netCDF4
import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader

from openstl_unistd.datasets.bair import BAIR
from openstl_unistd.datasets.checks import (DataError, EmptySplitError, NonFiniteError, UnreadableFileError,
                                            all_finite)
from openstl_unistd.datasets.cityscapes import Cityscapes
from openstl_unistd.datasets.datamodule import MultiTaskDataModule
from openstl_unistd.datasets.fixtures.bair import write_bair_tfrecord
from openstl_unistd.datasets.fixtures.cityscapes import write_cityscapes
from openstl_unistd.datasets.fixtures.enso import write_enso
from openstl_unistd.datasets.fixtures.kth import write_kth
from openstl_unistd.datasets.fixtures.taxibj import write_taxibj_openstl, write_taxibj_predbench
from openstl_unistd.datasets.fixtures.traffic4cast import write_traffic4cast
from openstl_unistd.datasets.kth import KTH
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.datasets.sevir import SEVIR
from openstl_unistd.datasets.traffic4cast import Traffic4Cast
from openstl_unistd.tasks import PAPER_TASKS, resolve_task

RAIN = resolve_task(dict(name='rain', input_frames=3, output_frames=2, channels=2, height=8, width=6, encoder_depth=1))
ENSO_SMALL = dict(cmip6_models=2, cmip6_years=5, cmip5_models=4, cmip5_years=4)


def arrays(tmp_path, values, name='rain.npy', **options):
    """Save ``values`` and build task 'rain' (custom arrays) on them."""
    np.save(tmp_path / name, values)
    return lambda split='train': build_dataset(RAIN, split, tmp_path, dict(type='arrays', path=name, **options))


def frames(count=10, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (count, 6, 2, 8, 6)).astype(np.float32)


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def garbage(path, size=2000):
    path.write_bytes(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())


# --- non-finite values ----------------------------------------------------------------------------

def test_nan_in_an_in_memory_training_array_names_file_task_key_and_sample(tmp_path):
    write_taxibj_openstl(tmp_path, train=6)
    path = tmp_path / 'taxibj' / 'dataset.npz'
    with np.load(path) as archive:
        contents = dict(archive)
    contents['Y_train'][4, 2, 1, 5, 7] = np.nan
    np.savez(path, **contents)
    with pytest.raises(NonFiniteError) as caught:
        build_dataset(PAPER_TASKS['taxibj'], 'train', tmp_path)
    assert re.search(r"task 'taxibj', split 'train': .*taxibj/dataset.npz: 'Y_train' holds NaN or ±Inf in 1 sample\(s\): "
                     r'sample 4 \(first: 1 non-finite value\(s\) \(1 NaN, 0 ±Inf\), the first at index = \(2, 1, 5, 7\)\)',
                     str(caught.value))
    assert len(build_dataset(PAPER_TASKS['taxibj'], 'test', tmp_path)) == 3  # the test arrays are clean


def test_nan_in_a_sample_read_from_disk_names_task_split_sample_and_file(tmp_path):
    values = frames()
    values[7, 4, 1, 2, 3] = np.nan
    dataset = arrays(tmp_path, values, mean=0.0, std=1.0)()  # memory-mapped: checked sample by sample
    assert torch.isfinite(dataset[6][1]).all()
    with pytest.raises(NonFiniteError) as caught:
        dataset[7]
    assert re.search(r"task 'rain', split 'train', sample 7: frames read from .*rain.npy, 'array' row 7 hold "
                     r'1 non-finite value\(s\) \(1 NaN, 0 ±Inf\), the first at \(t, c, h, w\) = \(4, 1, 2, 3\)',
                     str(caught.value))


def test_non_finite_sample_stops_a_data_loader_worker_with_the_same_error(tmp_path):
    values = frames()
    values[2, 0, 0, 0, 0] = np.inf
    dataset = arrays(tmp_path, values, mean=0.0, std=1.0)()
    loader = DataLoader(dataset, batch_size=4, num_workers=1)
    with pytest.raises(NonFiniteError, match=r"task 'rain', split 'train', sample 2: .*\(0 NaN, 1 ±Inf\)"):
        list(loader)


@pytest.mark.filterwarnings('ignore:overflow encountered in cast')
def test_values_that_overflow_float32_are_caught_in_model_range(tmp_path):
    values = frames().astype(np.float64)
    values[1, 4, 0, 0, 0] = 1e300  # frame 4 of T + T' = 5
    dataset = arrays(tmp_path, values, mean=0.0, std=1.0)()
    with pytest.raises(NonFiniteError, match=r"sample 1: .*the first at \(t, c, h, w\) = \(4, 0, 0, 0\) "
                                             r'\(in model range: NaN/±Inf in the file, or values too large for float32\)'):
        dataset[1]


def test_nan_in_the_training_part_names_the_sample_when_fitting_the_scale(tmp_path):
    values = frames()
    values[[3, 5], 0, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"task 'rain', split 'val': .*rain.npy: 'array' holds NaN or ±Inf in "
                                             r'2 sample\(s\): sample 3, 5'):
        arrays(tmp_path, values)('val')


def test_nan_in_an_xarray_variable_is_not_skipped_when_fitting_the_scale(tmp_path):
    values = np.random.default_rng(0).normal(280, 5, (30, 8, 6)).astype(np.float32)
    values[12, 4, 4] = np.nan  # xarray's min/max skip NaN by default
    xr.Dataset({'t2m': (('time', 'lat', 'lon'), values)}).to_netcdf(tmp_path / 'era.nc')
    spec = resolve_task(dict(name='era', input_frames=3, output_frames=2, channels=1, height=8, width=6, encoder_depth=1))
    with pytest.raises(NonFiniteError, match=r"task 'era', split 'train': .*era.nc: 't2m' holds NaN or ±Inf in "
                                             r'1 time step\(s\): time step 12'):
        build_dataset(spec, 'train', tmp_path, dict(type='xarray', path='era.nc', variable='t2m'))


def test_nan_in_an_enso_sample_names_the_rows(tmp_path):
    write_enso(tmp_path, **ENSO_SMALL)
    with netCDF4.Dataset(tmp_path / 'enso' / 'CMIP_train.nc', 'a') as data:
        data['sst'][18, 0, 10, 40] = np.nan  # row 0 of the val model (rows 18–21), a kept column
    val = build_dataset(PAPER_TASKS['enso'], 'val', tmp_path, ENSO_SMALL)
    with pytest.raises(NonFiniteError, match=r"task 'enso', split 'val', sample 0: frames read from .*CMIP_train.nc, "
                                             r"'sst' year rows \[18\] hold 1 non-finite value\(s\) \(1 NaN, 0 ±Inf\), "
                                             r'the first at \(t, c, h, w\) = \(0, 0, 10, 21\)'):
        val[0]


def test_all_finite_is_exact_even_when_the_sum_overflows():
    large = torch.full((4,), 3e38)
    assert all_finite(large) and not all_finite(torch.tensor([1.0, float('nan')]))
    assert not all_finite(torch.tensor([float('inf'), -float('inf')]))


def test_non_finite_or_zero_scale_names_the_file(tmp_path):
    build = arrays(tmp_path, frames(), mean=float('nan'), std=1.0)
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*rain.npy: 'array': normalization "
                                        r'mean=\[nan, nan\], std=\[1.0, 1.0\]; expected finite values and std ≠ 0'):
        build()


# --- unreadable files -----------------------------------------------------------------------------

def test_truncated_npy_names_the_file(tmp_path):
    write_taxibj_predbench(tmp_path)
    truncate(tmp_path / 'taxibj' / 'train.npy')
    with pytest.raises(UnreadableFileError, match=r"task 'taxibj', split 'train': .*taxibj/train.npy: cannot read this "
                                                  r'.npy file \(ValueError: Failed to read all data.*\); the file may be '
                                                  r'truncated'):
        build_dataset(PAPER_TASKS['taxibj'], 'train', tmp_path, dict(format='predbench'))


def test_truncated_memory_mapped_npy_names_the_file(tmp_path):
    build = arrays(tmp_path, frames())
    truncate(tmp_path / 'rain.npy')
    with pytest.raises(UnreadableFileError, match=r"task 'rain', split 'train': .*rain.npy: cannot read this .npy file "
                                                  r'\(ValueError: mmap length is greater than file size\)'):
        build()


def test_garbage_or_truncated_npz_names_the_file(tmp_path):
    write_taxibj_openstl(tmp_path)
    path = tmp_path / 'taxibj' / 'dataset.npz'
    truncate(path)
    with pytest.raises(UnreadableFileError, match=r"task 'taxibj', split 'train': .*taxibj/dataset.npz: cannot read "
                                                  r'this .npz file \(BadZipFile: File is not a zip file\)'):
        build_dataset(PAPER_TASKS['taxibj'], 'train', tmp_path)
    garbage(path)
    with pytest.raises(UnreadableFileError, match=r'taxibj/dataset.npz: cannot read this .npz file'):
        build_dataset(PAPER_TASKS['taxibj'], 'train', tmp_path)


def test_truncated_or_garbage_hdf5_names_the_file(tmp_path):
    write_cityscapes(tmp_path)
    shard = tmp_path / 'cityscapes' / 'Cityscapes128_h5' / 'train' / 'shard_0001.hdf5'
    truncate(shard)
    with pytest.raises(UnreadableFileError, match=r"task 'cityscapes', split 'train': .*train/shard_0001.hdf5: cannot "
                                                  r'read this HDF5 file \(OSError: .*truncated file'):
        build_dataset(PAPER_TASKS['cityscapes'], 'train', tmp_path)
    garbage(shard)
    with pytest.raises(UnreadableFileError, match=r'shard_0001.hdf5: cannot read this HDF5 file \(OSError: .*file '
                                                  r'signature not found'):
        Cityscapes(tmp_path, 'train')


def test_a_corrupt_chunk_read_for_a_sample_names_task_sample_and_file(tmp_path):
    write_traffic4cast(tmp_path, days={'train': ('BERLIN/training/2019-05-16_BERLIN_8ch.h5',)})
    path = tmp_path / 'Traffic4Cast2021' / 'BERLIN' / 'training' / '2019-05-16_BERLIN_8ch.h5'
    with h5py.File(path, 'r') as f:  # the gzip chunk of frame 13: the header stays intact
        chunk = f['array'].id.get_chunk_info_by_coord((13, 0, 0, 0))
    with open(path, 'r+b') as f:
        f.seek(chunk.byte_offset)
        f.write(b'\xff' * min(chunk.size, 64))
    dataset = build_dataset(PAPER_TASKS['traffic4cast'], 'train', tmp_path)
    dataset[0]  # frames 0–11 are fine
    with pytest.raises(UnreadableFileError, match=r"task 'traffic4cast', split 'train', sample 1: cannot read "
                                                  r".*2019-05-16_BERLIN_8ch.h5, 'array' frames 10–21 \(OSError: "):
        dataset[1]


def test_garbage_netcdf_names_the_file(tmp_path):
    write_enso(tmp_path, **ENSO_SMALL)
    garbage(tmp_path / 'enso' / 'CMIP_train.nc')
    with pytest.raises(UnreadableFileError, match=r"task 'enso', split 'train': .*enso/CMIP_train.nc: cannot read this "
                                                  r'netCDF file'):
        build_dataset(PAPER_TASKS['enso'], 'train', tmp_path, ENSO_SMALL)
    garbage(tmp_path / 'mine.nc')
    with pytest.raises(UnreadableFileError, match=r"task 'rain', split 'test': .*mine.nc: cannot read this netCDF file"):
        build_dataset(RAIN, 'test', tmp_path, dict(type='xarray', path='mine.nc', variable='x'))


def test_truncated_jpg_names_the_image_and_the_sample(tmp_path):
    write_kth(tmp_path, {(17, 'walking', 1): 25})
    dataset = KTH(tmp_path, 'test')
    image = tmp_path / 'kth' / 'walking' / 'person17_walking_d1_uncomp' / 'image_0010.jpg'
    truncate(image, keep=0.3)
    with pytest.raises(UnreadableFileError, match=r"task 'kth', split 'test', sample 0: .*image_0010.jpg: cannot read "
                                                  r'this image file \(OSError: image file is truncated'):
        dataset[0]


def test_corrupt_tfrecord_record_names_the_file_and_offset(tmp_path):
    write_bair_tfrecord(tmp_path, {'test': (1,)})
    path = next((tmp_path / 'softmotion30_44k' / 'test').glob('*.tfrecords'))
    data = bytearray(path.read_bytes())
    data[12:40] = b'\xff' * 28  # the start of record 0's payload; the length headers stay intact
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFileError, match=r'traj_0_to_0.tfrecords: the record at byte 0 is not a '
                                                  r'tf.train.Example'):
        BAIR(tmp_path, 'test')


def test_garbage_split_list_and_catalog_name_the_file(tmp_path):
    lists = tmp_path / 'annotations' / 'traffic4cast2021'
    lists.mkdir(parents=True)
    (lists / 'traffic4cast2021_train.json').write_text('["BERLIN/training/a.h5", ')
    with pytest.raises(UnreadableFileError, match=r'traffic4cast2021_train.json: not a readable JSON list of day files'):
        Traffic4Cast(tmp_path, 'train')
    (tmp_path / 'sevir').mkdir()
    garbage(tmp_path / 'sevir' / 'CATALOG.csv')
    with pytest.raises(UnreadableFileError, match=r'sevir/CATALOG.csv: not a readable CSV catalog'):
        SEVIR(tmp_path, 'train')


# --- empty arrays and dtypes ----------------------------------------------------------------------

def test_empty_array_names_file_key_and_shape(tmp_path):
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*rain.npy: 'array' is empty: shape "
                                        r'\(0, 6, 2, 8, 6\), expected at least one value along every axis'):
        arrays(tmp_path, np.zeros((0, 6, 2, 8, 6), np.float32))()
    np.savez(tmp_path / 'taxibj.npz', X_train=np.zeros((0, 4, 2, 32, 32)), Y_train=np.zeros((0, 4, 2, 32, 32)))
    (tmp_path / 'taxibj').mkdir()
    (tmp_path / 'taxibj.npz').rename(tmp_path / 'taxibj' / 'dataset.npz')
    with pytest.raises(DataError, match=r"dataset.npz: 'X_train' is empty: shape \(0, 4, 2, 32, 32\)"):
        build_dataset(PAPER_TASKS['taxibj'], 'train', tmp_path)


def test_string_dtype_names_file_key_and_dtype(tmp_path):
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*rain.npy: 'array' has dtype <U3 \(strings\), "
                                        r'expected real numbers \(integers or floats\)'):
        arrays(tmp_path, np.full((4, 6, 2, 8, 6), 'abc'))()


def test_complex_dtype_names_file_key_and_dtype(tmp_path):
    np.savez(tmp_path / 'rain.npz', frames=frames().astype(np.complex64))
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*rain.npz: 'frames' has dtype complex64 "
                                        r'\(complex numbers\), expected real numbers'):
        build_dataset(RAIN, 'train', tmp_path, dict(type='arrays', path='rain.npz', key='frames'))


def test_bool_dtype_names_file_key_and_dtype(tmp_path):
    with pytest.raises(DataError, match=r"task 'rain', split 'train': .*rain.npy: 'array' has dtype bool \(booleans\), "
                                        r'expected real numbers \(integers or floats\)'):
        arrays(tmp_path, frames() > 0.5)()


def test_string_dtype_in_an_hdf5_day_file_names_file_and_key(tmp_path):
    write_traffic4cast(tmp_path, days={'train': ('BERLIN/training/2019-05-16_BERLIN_8ch.h5',)}, frames=13)
    path = tmp_path / 'Traffic4Cast2021' / 'BERLIN' / 'training' / '2019-05-16_BERLIN_8ch.h5'
    with h5py.File(path, 'w') as f:
        f['array'] = np.array([b'not', b'frames'])
    with pytest.raises(DataError, match=r"2019-05-16_BERLIN_8ch.h5: 'array' has dtype \|S6 \(byte strings\)"):
        Traffic4Cast(tmp_path, 'train')


# --- empty splits ---------------------------------------------------------------------------------

def test_empty_split_names_task_split_and_path(tmp_path):
    build = arrays(tmp_path, frames(), splits=dict(train=0.9, val=0.1, test=0.0))
    assert len(build('train')) == 9
    with pytest.raises(EmptySplitError, match=r"task 'rain', split 'test': no samples in .*rain.npy \(loader 'arrays'\): "
                                              r'the split is empty, or none of its sequences holds input_frames \+ '
                                              r'output_frames = 3 \+ 2 frames'):
        build('test')


def test_empty_split_of_a_paper_layout_names_its_list_file(tmp_path):
    write_traffic4cast(tmp_path, days={'train': ('BERLIN/training/2019-05-16_BERLIN_8ch.h5',), 'test': ()}, frames=13)
    assert json.loads((tmp_path / 'annotations/traffic4cast2021/traiifc4cast2021_test.json').read_text()) == []
    with pytest.raises(EmptySplitError, match=r"task 'traffic4cast', split 'test': no samples in "
                                              r".*traiifc4cast2021_test.json \(loader 'traffic4cast'\)"):
        build_dataset(PAPER_TASKS['traffic4cast'], 'test', tmp_path)


def test_the_data_module_refuses_an_empty_test_split(tmp_path):
    np.save(tmp_path / 'rain.npy', frames())
    module = MultiTaskDataModule([RAIN], tmp_path, dict(rain=dict(type='arrays', path='rain.npy',
                                                                  splits=dict(train=0.8, val=0.2, test=0.0))))
    module.setup('fit')
    with pytest.raises(EmptySplitError, match=r"task 'rain', split 'test': no samples in .*rain.npy"):
        module.setup('test')


def test_errors_are_value_errors_and_chain_the_original(tmp_path):
    build = arrays(tmp_path, frames())
    truncate(tmp_path / 'rain.npy')
    with pytest.raises(ValueError) as caught:
        build()
    assert isinstance(caught.value.__cause__, ValueError) and 'mmap length' in str(caught.value.__cause__)
    assert issubclass(NonFiniteError, ValueError) and issubclass(EmptySplitError, ValueError)
