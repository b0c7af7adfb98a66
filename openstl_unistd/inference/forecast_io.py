"""Forecast files: reading a task's past frames and writing its forecast in the same container.

Inputs are in physical units: ``.npy``/``.npz`` arrays ``(N, T, C, H, W)``, or one variable of a
netCDF file / zarr store with dims ``(time, [channel], y, x)`` (the custom-task loader's
``time_dim``/``channel_dim`` options), read as one sample of its whole time axis. They are read by the
data loaders' checked readers (``datasets/checks.py``): an unreadable file, a dtype other than integers
or floats, an empty array and (in the frames the model reads) NaN or ±Inf stop with the file and key
named, as in training. Forecasts go to
``.npy``/``.npz`` as ``(N, K, C, H, W)``, or, for xarray inputs, to netCDF/zarr as the same variable
(attributes, channel and spatial coordinates kept; dims in the input's order) on a time axis that
continues the input's when its steps are regular.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import UserValueError

PathLike = Union[str, Path]
ARRAY_SUFFIXES = ('.npy', '.npz')
XARRAY_SUFFIXES = ('.nc', '.nc4', '.netcdf', '.zarr')


@dataclass
class ForecastInput:
    """Past frames ``values (N, T, C, H, W)`` of a file, and what writing the forecast back needs.

    Attributes:
        path: the file.
        values: the frames in physical units.
        variable: for xarray inputs, the variable as a ``DataArray`` of dims ``(time, channel, y, x)``
            (``channel`` added when the file has none), else ``None``.
        key: the array's name in the file (``.npz`` key, the variable, ``'array'`` for ``.npy``), for errors.
        dataset_attrs, original_dims, time_dim, channel_dim: how to write it back (xarray inputs).
    """

    path: Path
    values: np.ndarray
    variable: Any = None
    key: str = 'array'
    dataset_attrs: dict = field(default_factory=dict)
    original_dims: tuple = ()
    time_dim: str = 'time'
    channel_dim: Optional[str] = None


def is_xarray_path(path: PathLike) -> bool:
    path = Path(path)
    return path.suffix in XARRAY_SUFFIXES or path.is_dir()


def read_input(path: PathLike, key: Optional[str] = None, variable: Optional[str] = None, time_dim: str = 'time',
               channel_dim: Optional[str] = None) -> ForecastInput:
    """The past frames of ``path``: an array file (``key`` for ``.npz`` with several arrays) or an xarray
    variable (``variable``, default the file's only one)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'input file {str(path)!r} not found')
    if path.suffix in ARRAY_SUFFIXES:
        key, values = _read_array(path, key)
        return ForecastInput(path, values, key=key)
    if is_xarray_path(path):
        return _read_xarray(path, variable, time_dim, channel_dim)
    raise UserValueError(f'{path}: unsupported input {path.suffix!r}; expected {ARRAY_SUFFIXES + XARRAY_SUFFIXES}')


def _read_array(path: Path, key: Optional[str]) -> tuple[str, np.ndarray]:
    """The key and array of an ``.npy`` (memory-mapped) or ``.npz`` file, checked: real numbers, not empty, 5-D."""
    from ..datasets.checks import check_array, load_npy, load_npz, npz_member

    if path.suffix == '.npy':
        key, array = 'array', load_npy(path)
    else:
        with load_npz(path) as archive:
            names = archive.files
            if key is None and len(names) == 1:
                key = names[0]
            if key not in names:
                raise UserValueError(f'{path}: key {key!r} not found; the archive holds {sorted(names)} (give --key)')
            array = npz_member(archive, path, key)
    check_array(path, key, array)
    if array.ndim != 5:
        raise UserValueError(f'{path}: {key!r} has shape {tuple(array.shape)}, expected (N, T, C, H, W)')
    return key, array


def _read_xarray(path: Path, variable: Optional[str], time_dim: str, channel_dim: Optional[str]) -> ForecastInput:
    from ..datasets.checks import check_array, is_read_error, open_xarray, unreadable

    dataset = open_xarray(path)
    names = sorted(dataset.data_vars)
    if variable is None:
        if len(names) != 1:
            raise UserValueError(f'{path}: holds variables {names}; choose one (--variable)')
        variable = names[0]
    if variable not in dataset.data_vars:
        raise UserValueError(f'{path}: variable {variable!r} not found; variables: {names}')
    data = dataset[variable]
    expected = (time_dim, channel_dim) if channel_dim else (time_dim,)
    if data.ndim != len(expected) + 2 or any(d not in data.dims for d in expected):
        raise UserValueError(f"{path}: {variable!r} has dims {data.dims}, expected ({', '.join(expected)}, y, x) "
                             '(--time-dim/--channel-dim)')
    check_array(path, variable, data)
    original = tuple(data.dims)
    data = data.transpose(*expected, *[d for d in data.dims if d not in expected])
    if channel_dim is None:
        data = data.expand_dims('channel', axis=1)
    try:
        values = np.asarray(data.values)[None]
    except Exception as error:
        if not is_read_error(error):
            raise
        raise unreadable(path, 'zarr' if path.suffix == '.zarr' or path.is_dir() else 'netCDF', error,
                         variable) from error
    return ForecastInput(path, values, data, variable, dict(dataset.attrs), original, time_dim, channel_dim)


def write_forecast(path: PathLike, forecast: np.ndarray, source: ForecastInput, task: str = '') -> Path:
    """Write ``forecast (N, K, C, H, W)`` to ``path``: ``.npy``/``.npz`` (key ``forecast``), or netCDF/zarr
    for an xarray ``source``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == '.npy':
        np.save(path, forecast)
    elif path.suffix == '.npz':
        np.savez(path, forecast=forecast)
    elif path.suffix in XARRAY_SUFFIXES:
        if source.variable is None:
            raise UserValueError(f'--out {path}: a netCDF/zarr forecast needs a netCDF/zarr input (its coordinates); '
                                 f'write {ARRAY_SUFFIXES} for {source.path.suffix} inputs')
        dataset = forecast_dataset(forecast[0], source, task)
        if path.suffix == '.zarr':
            dataset.to_zarr(path, mode='w')
        else:
            dataset.to_netcdf(path)
    else:
        raise UserValueError(f'--out {path}: unsupported output {path.suffix!r}; expected {ARRAY_SUFFIXES + XARRAY_SUFFIXES}')
    return path


def extended_times(times: np.ndarray, steps: int) -> Optional[np.ndarray]:
    """The ``steps`` times after ``times`` when its spacing is regular (numbers, datetimes, cftime), else ``None``."""
    if len(times) < 2:
        return None
    try:
        deltas = np.diff(times)
        step = deltas[0]
        if np.issubdtype(np.asarray(deltas).dtype, np.floating):
            regular = bool(np.allclose(deltas, step, rtol=1e-9, atol=0))
        else:
            regular = all(d == step for d in deltas)
        if not regular:
            return None
        return np.array([times[-1] + step * (k + 1) for k in range(steps)], dtype=times.dtype)
    except TypeError:
        return None


def forecast_dataset(forecast: np.ndarray, source: ForecastInput, task: str = ''):
    """``forecast (K, C, H, W)`` as an ``xarray.Dataset`` shaped like ``source``'s variable."""
    import xarray as xr

    data, time_dim = source.variable, source.time_dim
    steps = forecast.shape[0]
    dims = tuple(data.dims)
    coords = {name: coord for name, coord in data.coords.items() if time_dim not in coord.dims}
    last = data[time_dim].values[-1] if time_dim in data.coords else None
    times = extended_times(data[time_dim].values, steps) if time_dim in data.coords else None
    if times is not None:
        coords[time_dim] = xr.Variable(time_dim, times, data[time_dim].attrs)
        coords[time_dim].encoding = {k: v for k, v in data[time_dim].encoding.items() if k in ('units', 'calendar')}
    elif time_dim in data.coords:
        warnings.warn(f'{source.path}: the time axis is not regular; the forecast has no {time_dim!r} coordinate '
                      f'(it follows {last})', stacklevel=2)
    array = xr.DataArray(forecast, dims=dims, coords=coords, attrs=dict(data.attrs), name=data.name)
    if source.channel_dim is None:
        array = array.squeeze('channel', drop=True)
    array = array.transpose(*source.original_dims)
    attrs = dict(source.dataset_attrs)
    attrs['forecast'] = (f"openstl-unistd forecast of task '{task}': {steps} steps after {last} from "
                         f'{source.path.name}')
    return xr.Dataset({data.name: array}, attrs=attrs)


def save_openstl(folder: PathLike, inputs: np.ndarray, preds: np.ndarray) -> Path:
    """OpenSTL's ``saved/{inputs,trues,preds}.npy`` layout under ``folder`` (model range, as OpenSTL's test
    saves them): there is no ground truth for a forecast, so ``trues.npy`` is all NaN (OpenSTL's
    ``tools/visualizations/vis_video.py`` loads it and draws those panels empty)."""
    saved = Path(folder) / 'saved'
    saved.mkdir(parents=True, exist_ok=True)
    np.save(saved / 'inputs.npy', inputs.astype(np.float32))
    np.save(saved / 'preds.npy', preds.astype(np.float32))
    np.save(saved / 'trues.npy', np.full(preds.shape, np.nan, dtype=np.float32))
    return saved


@dataclass(frozen=True)
class ForecastRun:
    """What :func:`forecast_file` wrote."""

    out: Path
    shape: tuple[int, ...]
    figures: list[Path]
    openstl: Optional[Path]


def forecast_file(predictor, task: str, input_path: PathLike, out: PathLike, horizon: Optional[int] = None,
                  batch_size: int = 16, precision: str = '32', progress: bool = False, key: Optional[str] = None,
                  variable: Optional[str] = None, time_dim: str = 'time', channel_dim: Optional[str] = None,
                  figures: Optional[int] = None, gifs: Optional[int] = None, figures_dir: Optional[PathLike] = None,
                  openstl_dir: Optional[PathLike] = None) -> ForecastRun:
    """Forecast every sample of ``input_path`` with ``predictor`` (a :class:`~.predictor.Predictor`) and write
    ``out`` in the input's container (nothing is written when the input or the forecast is not finite); ``figures``/``gifs``: PNG strips / GIFs of the first N samples (``-1``:
    all) under ``figures_dir`` (default ``<out>_figures``); ``openstl_dir``: OpenSTL's ``saved/`` layout too."""
    import torch

    from ..core.visualization import save_forecast_gif, save_forecast_strip
    from .predictor import select_input

    out = Path(out)
    if Path(input_path).resolve() == out.resolve():
        raise UserValueError(f'--out {out} is the input file')
    if out.suffix in XARRAY_SUFFIXES and not is_xarray_path(input_path):
        raise UserValueError(f'--out {out}: a netCDF/zarr forecast needs a netCDF/zarr input; write {ARRAY_SUFFIXES}')
    spec = predictor.task(task)
    source = read_input(input_path, key, variable, time_dim, channel_dim)
    preds = predictor.predict(source.values, task, horizon, batch_size=batch_size, precision=precision,
                              progress=progress, source=source.path, name=source.key)   # checks what it reads
    inputs = np.array(select_input(source.values, spec, str(source.path)))   # reads only the last T frames
    write_forecast(out, preds, source, task)
    folder = Path(figures_dir) if figures_dir else out.with_name(out.stem + '_figures')
    written = []
    for count, suffix in ((figures, 'png'), (gifs, 'gif')):
        if count is None:
            continue
        for index in range(len(preds) if count < 0 else min(count, len(preds))):
            path = folder / f'{task}_{index:04d}.{suffix}'
            if suffix == 'png':
                save_forecast_strip(inputs[index], preds[index], path, title=f'{task} sample {index}')
            else:
                save_forecast_gif(inputs[index], preds[index], path)
            written.append(path)
    saved = None
    if openstl_dir is not None:
        scaling = predictor.card.scalings[task]
        to_model = lambda a: scaling.to_model(torch.from_numpy(np.asarray(a, dtype=np.float32))).numpy()  # noqa: E731
        saved = save_openstl(openstl_dir, to_model(inputs), to_model(preds))
    return ForecastRun(out, tuple(preds.shape), written, saved)
