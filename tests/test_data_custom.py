import warnings

import numpy as np
import pytest
import xarray as xr

from openstl_unistd.datasets.custom import ArrayTask, XarrayTask
from openstl_unistd.datasets.scaling import ScalingWarning
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import resolve_task

from .physical_values import denormalize

SPEC = resolve_task(dict(name='rain', input_frames=3, output_frames=2, channels=2, height=8, width=6, encoder_depth=1))


def test_npy_arrays_split_by_fraction_normalized_on_train(tmp_path):
    data = np.random.default_rng(0).uniform(5, 15, (20, 6, 2, 8, 6)).astype(np.float32)
    np.save(tmp_path / 'mine.npy', data)
    train = build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='mine.npy'))
    test = build_dataset(SPEC, 'test', tmp_path, dict(type='arrays', path='mine.npy', splits=dict(train=0.5, val=0.25, test=0.25)))
    assert len(train) == 16 and len(test) == 5
    low, high = data[:16].min(axis=(0, 1, 3, 4)), data[:16].max(axis=(0, 1, 3, 4))  # per channel
    np.testing.assert_allclose(train.mean.ravel(), low) and np.testing.assert_allclose(train.std.ravel(), high - low)
    assert train.mean.shape == (2, 1, 1) and test.mean.shape == (2, 1, 1)
    x, y = train[3]
    assert x.shape == (3, 2, 8, 6) and y.shape == (2, 2, 8, 6)
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(denormalize(train, y.numpy()), data[3, 3:5], rtol=1e-5)
    np.testing.assert_allclose(denormalize(test, test[0][0].numpy()), data[15, :3], rtol=1e-5)


def test_npz_arrays_with_explicit_ranges_and_given_scale(tmp_path):
    data = np.arange(10 * 5 * 2 * 8 * 6, dtype=np.float32).reshape(10, 5, 2, 8, 6)
    np.savez(tmp_path / 'mine.npz', frames=data)
    val = ArrayTask(tmp_path, 'val', 3, 2, path='mine.npz', key='frames', mean=1.0, std=2.0,
                    splits=dict(train=(0, 6), val=(6, 8), test=(8, 10)))
    assert len(val) == 2
    np.testing.assert_allclose(val[1][0].numpy(), (data[7, :3] - 1.0) / 2.0)
    with pytest.raises(ValueError, match=r"mine.npz: key 'x' not found; the archive holds \['frames'\]"):
        ArrayTask(tmp_path, 'val', 3, 2, path='mine.npz', key='x')


def test_array_errors_name_file_and_shapes(tmp_path):
    np.save(tmp_path / 'flat.npy', np.zeros((4, 5, 8, 6)))
    with pytest.raises(ValueError, match=r"flat.npy: 'array' has shape \(4, 5, 8, 6\), expected \(N, T_total, C, H, W\)"):
        ArrayTask(tmp_path, 'train', 3, 2, path='flat.npy')
    np.save(tmp_path / 'short.npy', np.zeros((4, 4, 2, 8, 6)))
    with pytest.raises(ValueError, match='sequences of 4 frames, fewer than'):
        ArrayTask(tmp_path, 'train', 3, 2, path='short.npy')
    with pytest.raises(FileNotFoundError, match=r'none.npy not found; see tools/prepare_data/custom.md'):
        ArrayTask(tmp_path, 'train', 3, 2, path='none.npy')
    np.save(tmp_path / 'other.npy', np.zeros((4, 6, 1, 8, 6)))
    with pytest.raises(ValueError, match=r"task 'rain': loader 'arrays' gives frames \(C, H, W\) = \(1, 8, 6\), "
                                         r'the task expects \(2, 8, 6\)'):
        build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='other.npy'))


def _series(tmp_path):
    times = np.array('2000-01-01', dtype='datetime64[D]') + np.arange(40)
    values = np.random.default_rng(1).normal(280, 5, (40, 2, 8, 6)).astype(np.float32)
    dataset = xr.Dataset({'t2m': (('time', 'level', 'lat', 'lon'), values)}, coords={'time': times})
    dataset.to_netcdf(tmp_path / 'era.nc')
    return times, values


def test_xarray_variable_cut_into_windows_by_date_split(tmp_path):
    times, values = _series(tmp_path)
    options = dict(type='xarray', path='era.nc', variable='t2m', channel_dim='level', stride=2,
                   splits=dict(train=('2000-01-01', '2000-01-24'), val=('2000-01-25', '2000-01-31'),
                               test=('2000-02-01', '2000-02-09')))
    train = build_dataset(SPEC, 'train', tmp_path, options)
    test = build_dataset(SPEC, 'test', tmp_path, options)
    assert len(train) == len(range(0, 24 - 5 + 1, 2)) and len(test) == len(range(0, 9 - 5 + 1, 2))
    np.testing.assert_allclose(train.mean.ravel(), values[:24].min(axis=(0, 2, 3)))
    x, y = test[1]
    assert x.shape == (3, 2, 8, 6)
    np.testing.assert_allclose(denormalize(test, x.numpy()), values[31 + 2:31 + 5], rtol=1e-5)
    np.testing.assert_allclose(denormalize(test, y.numpy()), values[31 + 5:31 + 7], rtol=1e-5)


def test_xarray_errors_name_the_variable_and_dims(tmp_path):
    _series(tmp_path)
    with pytest.raises(ValueError, match=r"era.nc: variable 'sst' not found; variables: \['t2m'\]"):
        XarrayTask(tmp_path, 'train', 3, 2, path='era.nc', variable='sst')
    with pytest.raises(ValueError, match=r"era.nc: 't2m' has dims \('time', 'level', 'lat', 'lon'\), expected \(time, y, x\)"):
        XarrayTask(tmp_path, 'train', 3, 2, path='era.nc', variable='t2m')


def _field(channels_scale=(1.0, 50.0), offset=(0.0, 300.0), n=20, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 6, 2, 8, 6))
    return (base * np.array(channels_scale)[:, None, None] + np.array(offset)[:, None, None]).astype(np.float32)


@pytest.mark.parametrize('loader', ['arrays', 'xarray'])
def test_standard_scaling_round_trips_physical_values_per_channel(tmp_path, loader):
    data = _field()
    if loader == 'arrays':
        np.save(tmp_path / 'f.npy', data)
        options = dict(type='arrays', path='f.npy', scale='standard')
        train_part = data[:16]
    else:  # one long series along time
        series = data.reshape(-1, 2, 8, 6)
        xr.Dataset({'v': (('time', 'c', 'y', 'x'), series)}).to_netcdf(tmp_path / 'f.nc')
        options = dict(type='xarray', path='f.nc', variable='v', channel_dim='c', scale='standard')
        train_part = series[:int(round(0.8 * len(series)))][:, None]
    train = build_dataset(SPEC, 'train', tmp_path, options)
    test = build_dataset(SPEC, 'test', tmp_path, options)
    axes = (0, 1, 3, 4)
    np.testing.assert_allclose(train.mean.ravel(), train_part.astype(np.float64).mean(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(train.std.ravel(), train_part.astype(np.float64).std(axis=axes), rtol=1e-6)
    x, y = train[2]
    model = np.concatenate([x.numpy(), y.numpy()])
    # each channel centred and unit-spread in model units, whatever its physical offset and spread
    assert abs(float(model[:, 1].mean())) < 0.5 and 0.5 < float(model[:, 1].std()) < 1.5
    first_targets = test.split_values()[0, 3:5] if loader == 'arrays' else test.split_values()[3:5].values
    np.testing.assert_allclose(denormalize(test, test[0][1].numpy()), first_targets, rtol=1e-5, atol=1e-3)


def test_the_squeeze_warning_fires_on_a_zero_centred_field_and_not_on_image_data(tmp_path):
    rng = np.random.default_rng(0)
    anomalies = rng.normal(0, 1, (20, 6, 1, 8, 6))
    anomalies[3, 2, 0, 4, 4] = 400.0  # one rare large event, as in rain or velocity anomalies
    np.save(tmp_path / 'anomalies.npy', anomalies.astype(np.float32))
    spec = resolve_task(dict(SPEC.__dict__, channels=1))
    with pytest.warns(ScalingWarning, match=r"anomalies.npy: 'array': with scale='minmax', 99% of the training values "
                                            r'lie in a sliver of the range they span \(channel 0: '):
        build_dataset(spec, 'train', tmp_path, dict(type='arrays', path='anomalies.npy'))
    images = rng.integers(0, 256, (20, 6, 1, 8, 6)).astype(np.uint8)
    np.save(tmp_path / 'images.npy', images)
    with warnings.catch_warnings():
        warnings.simplefilter('error', ScalingWarning)
        build_dataset(spec, 'train', tmp_path, dict(type='arrays', path='images.npy'))
        build_dataset(spec, 'train', tmp_path, dict(type='arrays', path='images.npy', scale='standard'))


def test_scale_options_are_checked(tmp_path):
    np.save(tmp_path / 'f.npy', _field())
    with pytest.raises(ValueError, match=r"scale must be one of \('minmax', 'standard'\), got 'zscore'"):
        build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='f.npy', scale='zscore'))
    with pytest.raises(ValueError, match=r'mean has 3 values, expected 1 or one per channel \(2\)'):
        build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='f.npy', mean=[0, 1, 2], std=1.0))
    with pytest.raises(ValueError, match='give both mean and std, or neither'):
        build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='f.npy', mean=0.0))
    given = build_dataset(SPEC, 'train', tmp_path, dict(type='arrays', path='f.npy', mean=[1.0, 2.0], std=[3.0, 4.0]))
    assert given.mean.ravel().tolist() == [1.0, 2.0] and given.std.ravel().tolist() == [3.0, 4.0]


def test_a_field_split_reports_its_data_range_in_model_units(tmp_path):
    data = _field()
    np.save(tmp_path / 'f.npy', data)
    test = build_dataset(SPEC, 'test', tmp_path, dict(type='arrays', path='f.npy', scale='standard'))
    model = (data[18:20, :5].astype(np.float64) - test.mean) / test.std
    assert test.metric_convention == 'field'
    assert test.data_range == pytest.approx(model.max() - model.min(), rel=1e-6)
