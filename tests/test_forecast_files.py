"""tools/predict.py and its files: arrays and netCDF in, the forecast in the same container, figures, OpenSTL."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from openstl_unistd.core.scaling import Scaling
from openstl_unistd.inference.forecast_io import extended_times, forecast_file
from openstl_unistd.inference.predictor import Predictor

from .trained import build, make_card, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RAIN = dict(name='rain', input_frames=4, output_frames=3, channels=2, height=16, width=16, encoder_depth=1)
SCALING = Scaling.of(280.0, 5.0)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    card = make_card([RAIN], {'rain': SCALING})
    model = build(card)
    path = save_checkpoint(model, card, tmp_path_factory.mktemp('model') / 'best.ckpt')
    return Predictor(model, card), path


def _netcdf(path, times, channel_dim='level'):
    rng = np.random.default_rng(0)
    values = rng.normal(280, 5, (2, 16, 16, len(times))).astype(np.float32)     # dims in another order
    data = xr.DataArray(values, dims=(channel_dim, 'lat', 'lon', 'time'),
                        coords={channel_dim: [850, 500], 'lat': np.linspace(-10, 10, 16), 'lon': np.arange(16.0),
                                'time': times},
                        attrs={'units': 'K', 'long_name': 'air temperature'})
    xr.Dataset({'t': data, 'other': data.isel({channel_dim: 0}) * 0}, attrs={'title': 'test field'}).to_netcdf(path)
    return values


def test_netcdf_in_netcdf_out_continues_the_time_axis(tmp_path, trained):
    predictor, _ = trained
    times = pd.date_range('2024-01-01', periods=6, freq='6h')
    values = _netcdf(tmp_path / 'past.nc', times)
    run = forecast_file(predictor, 'rain', tmp_path / 'past.nc', tmp_path / 'future.nc', horizon=5, variable='t',
                        time_dim='time', channel_dim='level')
    assert run.shape == (1, 5, 2, 16, 16)
    with xr.open_dataset(tmp_path / 'future.nc') as out:
        forecast = out['t'].load()
        assert out.attrs['title'] == 'test field' and "task 'rain'" in out.attrs['forecast']
    assert forecast.dims == ('level', 'lat', 'lon', 'time')
    assert forecast.attrs['units'] == 'K' and forecast.attrs['long_name'] == 'air temperature'
    assert list(forecast['level'].values) == [850, 500]
    np.testing.assert_array_equal(forecast['lat'].values, np.linspace(-10, 10, 16))
    expected_times = pd.date_range('2024-01-02 12:00', periods=5, freq='6h')
    np.testing.assert_array_equal(forecast['time'].values, expected_times.values)
    past = torch.from_numpy(values.transpose(3, 0, 1, 2)[None, -4:].copy())     # (1, T, C, H, W)
    expected = predictor.predict(past, 'rain', horizon=5)[0].numpy()
    np.testing.assert_array_equal(forecast.transpose('time', 'level', 'lat', 'lon').values, expected)


def test_irregular_time_axis_and_missing_channel_dim(tmp_path, trained):
    predictor, _ = trained
    times = np.array([0.0, 1.0, 3.0, 4.0, 5.0])
    values = np.random.default_rng(1).normal(280, 5, (5, 16, 16)).astype(np.float32)
    xr.Dataset({'t': (('time', 'y', 'x'), values)}, coords={'time': times}).to_netcdf(tmp_path / 'past.nc')
    one_channel = make_card([dict(RAIN, channels=1)], {'rain': SCALING})
    with pytest.warns(UserWarning, match="the time axis is not regular; the forecast has no 'time' coordinate"):
        forecast_file(Predictor(build(one_channel), one_channel), 'rain', tmp_path / 'past.nc', tmp_path / 'f.nc')
    with xr.open_dataset(tmp_path / 'f.nc') as out:
        assert out['t'].dims == ('time', 'y', 'x') and out['t'].shape == (3, 16, 16) and 'time' not in out.coords
    assert list(extended_times(np.array([0.0, 0.5, 1.0]), 2)) == [1.5, 2.0]
    with pytest.raises(ValueError, match=r"past.nc: 't' has dims \('time', 'y', 'x'\), expected \(time, level, y, x\)"):
        forecast_file(predictor, 'rain', tmp_path / 'past.nc', tmp_path / 'g.nc', channel_dim='level')


def test_predict_tool_arrays_figures_gifs_and_openstl_layout(tmp_path, trained):
    predictor, checkpoint = trained
    past = np.random.default_rng(2).normal(280, 5, (3, 6, 2, 16, 16)).astype(np.float32)
    np.save(tmp_path / 'past.npy', past)
    command = [sys.executable, str(ROOT / 'tools/predict.py'), '--ckpt', str(checkpoint), '--task', 'rain',
               '--input', str(tmp_path / 'past.npy'), '--horizon', '7', '--out', str(tmp_path / 'out/future.npy'),
               '--figures', '--gif', '2', '--save-openstl', str(tmp_path / 'openstl'), '--batch-size', '2']
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'predict rain: 3/3 samples, 7 frames' in result.stderr
    future = np.load(tmp_path / 'out/future.npy')
    assert future.shape == (3, 7, 2, 16, 16)
    np.testing.assert_allclose(future, predictor.predict(past, 'rain', horizon=7), rtol=0, atol=1e-4)
    figures = sorted(p.name for p in (tmp_path / 'out/future_figures').iterdir())
    assert figures == ['rain_0000.gif', 'rain_0000.png', 'rain_0001.gif', 'rain_0001.png', 'rain_0002.png']
    from PIL import Image
    with Image.open(tmp_path / 'out/future_figures/rain_0001.gif') as gif:
        assert gif.n_frames == 4 + 7
    saved = tmp_path / 'openstl' / 'saved'
    inputs, preds, trues = (np.load(saved / f'{name}.npy') for name in ('inputs', 'preds', 'trues'))
    np.testing.assert_allclose(inputs, (past[:, -4:] - 280.0) / 5.0, rtol=0, atol=1e-6)   # model range, as OpenSTL
    np.testing.assert_allclose(preds, (future - 280.0) / 5.0, rtol=0, atol=1e-6)
    assert trues.shape == preds.shape and np.isnan(trues).all()


def _tool(name):
    """``main`` of ``tools/<name>.py`` (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f'tool_{name}', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_predict_tool_reports_bad_input_by_file_task_and_shape(tmp_path, trained, capsys):
    from openstl_unistd.engine.cli import run_tool

    _, checkpoint = trained
    np.save(tmp_path / 'wrong.npy', np.zeros((2, 6, 2, 16, 12), dtype=np.float32))
    common = ['--ckpt', str(checkpoint), '--task', 'rain', '--input', str(tmp_path / 'wrong.npy'), '--quiet']
    assert run_tool(_tool('predict'), common + ['--out', str(tmp_path / 'f.npy')]) == 2
    assert (f"error: {tmp_path / 'wrong.npy'}: task 'rain' takes (N, T, C, H, W) = (N, ≥4, 2, 16, 16), "
            'got (2, 6, 2, 16, 12): W is 12, expected 16') in capsys.readouterr().err
    assert run_tool(_tool('predict'), common + ['--out', str(tmp_path / 'f.nc')]) == 2
    assert 'a netCDF/zarr forecast needs a netCDF/zarr input' in capsys.readouterr().err
    assert run_tool(_tool('predict'), common + ['--out', str(tmp_path / 'f.npy'), '--task', 'snow']) == 2
    assert "unknown task 'snow': this model serves ['rain']" in capsys.readouterr().err


def test_npz_inputs_by_key_and_npz_output(tmp_path, trained):
    predictor, _ = trained
    past = np.random.default_rng(3).normal(280, 5, (2, 4, 2, 16, 16)).astype(np.float32)
    np.savez(tmp_path / 'two.npz', frames=past, mask=np.ones(3))
    with pytest.raises(ValueError, match=r"two.npz: key None not found; the archive holds \['frames', 'mask'\]"):
        forecast_file(predictor, 'rain', tmp_path / 'two.npz', tmp_path / 'f.npz')
    forecast_file(predictor, 'rain', tmp_path / 'two.npz', tmp_path / 'f.npz', key='frames')
    with np.load(tmp_path / 'f.npz') as out:
        assert np.array_equal(out['forecast'], predictor.predict(past, 'rain'))


# --- inputs are read through the loaders' checked readers; no NaN forecast leaves -------------------

def _predict(checkpoint, path, out, *extra):
    from openstl_unistd.engine.cli import run_tool

    return run_tool(_tool('predict'), ['--ckpt', str(checkpoint), '--task', 'rain', '--input', str(path), '--out',
                                       str(out), '--quiet', *extra])


def _error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def test_nan_inf_in_an_input_file_is_refused_naming_the_file_and_sample(tmp_path, trained, capsys):
    _, checkpoint = trained
    past = np.random.default_rng(4).normal(280, 5, (3, 4, 2, 16, 16)).astype(np.float32)
    past[2, 1, 1, 0, 5] = np.inf
    np.save(tmp_path / 'past.npy', past)
    assert _predict(checkpoint, tmp_path / 'past.npy', tmp_path / 'f.npy') == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {tmp_path / 'past.npy'}: 'array' holds NaN or ±Inf in 1 sample(s): sample 2 ")
    assert 'at index = (1, 1, 0, 5)' in line and not (tmp_path / 'f.npy').exists()
    np.savez(tmp_path / 'past.npz', frames=past)
    assert _predict(checkpoint, tmp_path / 'past.npz', tmp_path / 'f.npz') == 2
    assert f"{tmp_path / 'past.npz'}: 'frames' holds NaN or ±Inf" in _error_line(capsys)


def test_nan_in_a_netcdf_variable_is_refused_naming_the_file(tmp_path, trained, capsys):
    _, checkpoint = trained
    values = _netcdf(tmp_path / 'past.nc', pd.date_range('2024-01-01', periods=6, freq='6h'))
    values[1, 3, 4, 5] = np.nan
    (tmp_path / 'past.nc').unlink()
    data = xr.DataArray(values, dims=('level', 'lat', 'lon', 'time'))
    xr.Dataset({'t': data}).to_netcdf(tmp_path / 'past.nc')
    assert _predict(checkpoint, tmp_path / 'past.nc', tmp_path / 'f.nc', '--channel-dim', 'level') == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: {tmp_path / 'past.nc'}: 't' frames 2–5 (the last 4, which the model reads) holds "
                           'NaN or ±Inf in 1 sample(s): sample 0 ')
    assert 'at index = (3, 1, 3, 4)' in line                                   # (t, c, h, w) of the frames read
    assert not (tmp_path / 'f.nc').exists()


@pytest.mark.parametrize('values,expected', [
    (np.zeros((0, 4, 2, 16, 16), np.float32), "'array' is empty: shape (0, 4, 2, 16, 16), expected at least one value along every axis"),
    (np.zeros((2, 4, 2, 16, 16), bool), "'array' has dtype bool (booleans), expected real numbers (integers or floats)"),
    (np.zeros((2, 4, 2, 16), np.float32), "'array' has shape (2, 4, 2, 16), expected (N, T, C, H, W)"),
])
def test_empty_non_real_and_misshapen_input_files_are_named(tmp_path, trained, capsys, values, expected):
    _, checkpoint = trained
    np.save(tmp_path / 'past.npy', values)
    assert _predict(checkpoint, tmp_path / 'past.npy', tmp_path / 'f.npy') == 2
    assert _error_line(capsys) == f"error: {tmp_path / 'past.npy'}: {expected}"


@pytest.mark.parametrize('name', ['past.npy', 'past.npz', 'past.nc'])
def test_a_garbage_input_file_is_named(tmp_path, trained, capsys, name):
    _, checkpoint = trained
    (tmp_path / name).write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    assert _predict(checkpoint, tmp_path / name, tmp_path / 'f.npy') == 2
    line = _error_line(capsys)
    assert line.startswith(f'error: {tmp_path / name}: cannot read this ') and 'truncated' in line


def test_a_non_finite_forecast_exits_non_zero_and_writes_nothing(tmp_path, capsys):
    card = make_card([RAIN], {'rain': SCALING})
    model = build(card)
    with torch.no_grad():
        next(model.decoders['rain'].parameters()).fill_(float('nan'))
    checkpoint = save_checkpoint(model, card, tmp_path / 'nan.ckpt')
    np.save(tmp_path / 'past.npy', np.random.default_rng(5).normal(280, 5, (2, 4, 2, 16, 16)).astype(np.float32))
    assert _predict(checkpoint, tmp_path / 'past.npy', tmp_path / 'f.npy', '--figures') == 1
    assert _error_line(capsys).startswith(f"error: {tmp_path / 'past.npy'}: the forecast of task 'rain' holds NaN")
    assert not (tmp_path / 'f.npy').exists() and not (tmp_path / 'f_figures').exists()


@pytest.mark.parametrize('device', ['tpu', 'cuda:99', 'two'])
def test_an_unknown_device_is_one_line_naming_the_option(tmp_path, trained, capsys, device):
    _, checkpoint = trained
    np.save(tmp_path / 'past.npy', np.zeros((1, 4, 2, 16, 16), np.float32))
    assert _predict(checkpoint, tmp_path / 'past.npy', tmp_path / 'f.npy', '--device', device) == 2
    line = _error_line(capsys)
    assert line.startswith("error: --device: expected 'cpu', 'auto' or one of torch's devices on this machine")
    assert line.endswith(f'got {device!r}')
