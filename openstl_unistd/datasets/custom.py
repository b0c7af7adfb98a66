"""A custom task from a user's own data: sample arrays (``.npy``/``.npz``) or an xarray variable.

Configured per task in the config, e.g.::

    tasks = [dict(name='rain', input_frames=6, output_frames=6, channels=1, height=64, width=64,
                  encoder_depth=2)]
    data = dict(datasets=dict(rain=dict(type='arrays', path='rain/radar.npy')))

Values are mapped to the model range per channel by ``mean``/``std`` (model = (x − mean) / std).
When not given they are fitted on the training part (read once; give ``mean``/``std`` for very
large data) as ``scale`` says: ``'minmax'`` (default; training data in [0, 1]) or ``'standard'``
(mean 0, std 1: signed fields). See ``scaling.py``, which also warns when a scaling squeezes the
data into a sliver of the model range.

These are *fields*, not pictures: their metrics (docs/metrics.md) are MSE/MAE/RMSE in physical
units and PSNR/SSIM with the data range of the test targets, without clipping to [0, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, SPLITS, require_path, shape_error
from .checks import DataError, check_array, check_rows_finite, load_npy, load_npz, name_range, npz_member, open_xarray
from .scaling import Scale, as_channel_scale, fit_scaling, model_range_of, warn_if_squeezed
from .windows import window_starts

SplitSpec = Mapping[str, Union[float, Sequence]]
DEFAULT_SPLITS = {'train': 0.8, 'val': 0.1, 'test': 0.1}
CUSTOM_HINT = 'custom.md'


def split_range(splits: SplitSpec, split: str, length: int, source: PathLike) -> tuple[int, int]:
    """``[start, end)`` of ``split`` along an axis of ``length``.

    ``splits`` gives fractions (consecutive, in train/val/test order) or explicit ``(start, end)``
    index pairs per split.
    """
    if split not in splits:
        raise UserValueError(f'{source}: no {split!r} entry in splits {dict(splits)}')
    values = [splits.get(name, 0) for name in SPLITS]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        if any(v < 0 for v in values) or sum(values) > 1 + 1e-9:
            raise UserValueError(f'{source}: split fractions {dict(splits)} must be ≥ 0 and sum to at most 1')
        bounds = np.rint(np.cumsum([0.0] + values) * length).astype(int)
        index = SPLITS.index(split)
        return int(bounds[index]), int(bounds[index + 1])
    start, end = splits[split]
    if not 0 <= start <= end <= length:
        raise UserValueError(f'{source}: split {split!r} = {(start, end)} is not a range inside [0, {length}]')
    return int(start), int(end)


def _scale(train_values, channel_axis: int, scale: str, mean: Scale, std: Scale, source: PathLike, key: str,
           offset: int, rows: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, std)`` of shape ``(C, 1, 1)``: as given, or fitted on the training values
    by ``scale`` (one pass over them; then a warning if the scaling squeezes them).

    ``train_values`` are rows ``offset …`` (``rows``: samples or time steps) of ``key`` in ``source``;
    NaN or ±Inf among them is an error naming the first such rows.
    """
    where = f'{source}: {key!r}'
    channels = train_values.shape[channel_axis]
    if mean is not None and std is not None:
        return as_channel_scale(mean, std, channels, where)
    if (mean is None) != (std is None):
        raise DataError(f'{where}: give both mean and std, or neither (then they are fitted with scale={scale!r})')
    if train_values.size == 0:
        raise DataError(f'{source}: the train split of {key!r} is empty, so mean and std cannot be fitted '
                        'on it; give a train split or mean and std')
    mean_, std_ = fit_scaling(train_values, channel_axis, scale, where)
    if not (np.isfinite(mean_).all() and np.isfinite(std_).all()):
        check_rows_finite(np.asarray(train_values), source, key, rows, offset)
    warn_if_squeezed(train_values, channel_axis, mean_, std_, scale, where)
    return mean_, std_


class FieldTask(ForecastDataset):
    """A user's field: per-channel scaling, and the metric convention of fields (``data_range``)."""

    metric_convention = 'field'
    channel_axis = 2

    def split_values(self):
        """This split's raw values, with channels on :attr:`channel_axis` (for :attr:`data_range`)."""
        raise NotImplementedError

    @property
    def data_range(self) -> float:
        """``max − min`` of this split's values in model units: the data range of PSNR/SSIM (one pass)."""
        if getattr(self, '_data_range', None) is None:
            self._data_range = model_range_of(self.split_values(), self.mean, self.std, self.channel_axis) or 1.0
        return self._data_range


class ArrayTask(FieldTask):
    """Samples from an array of shape ``(N, T_total, C, H, W)``, split along ``N``.

    Args:
        path: ``.npy`` (memory-mapped) or ``.npz`` file, relative to ``data_root`` or absolute.
        key: array name inside an ``.npz``.
        splits: fractions or ``(start, end)`` sample ranges per split (default 0.8/0.1/0.1).
        scale: ``'minmax'`` or ``'standard'``, per channel, fitted on the training part.
        mean, std: normalization (a number, or one per channel) instead of fitting it.
    """

    task = 'arrays'
    prepare_script = CUSTOM_HINT

    def __init__(self, data_root: PathLike, split: str, input_frames: int, output_frames: int,
                 path: PathLike = '', key: Optional[str] = None, splits: SplitSpec = DEFAULT_SPLITS,
                 scale: str = 'minmax', mean: Scale = None, std: Scale = None) -> None:
        super().__init__(split, input_frames, output_frames)
        file = self.source = require_path(Path(data_root) / path, self.task, self.prepare_script)
        self.key = key or 'array'
        array = self._open(file, key)
        check_array(file, self.key, array)
        if array.ndim != 5:
            raise shape_error(file, self.key, '(N, T_total, C, H, W)', array.shape)
        self.check_sequence_length(array.shape[1], file)
        self.frame_shape = tuple(array.shape[2:])
        train_start, train_end = split_range(splits, 'train', len(array), file)
        self.scale = scale
        self.mean, self.std = _scale(array[train_start:train_end], 2, scale, mean, std, file, self.key, train_start,
                                     'sample')
        start, end = split_range(splits, split, len(array), file)
        if file.suffix == '.npz':  # already in memory: check the whole split now rather than sample by sample
            check_rows_finite(array[start:end], file, self.key, 'sample', start)
        self.array, self.offset, self.count = array, start, end - start

    @staticmethod
    def _open(file: Path, key: Optional[str]) -> np.ndarray:
        if file.suffix == '.npy':
            return load_npy(file)
        if file.suffix == '.npz':
            with load_npz(file) as archive:
                if key is None or key not in archive.files:
                    raise UserValueError(f'{file}: key {key!r} not found; the archive holds {sorted(archive.files)}')
                return npz_member(archive, file, key)
        raise UserValueError(f'{file}: expected a .npy or .npz file')

    def __len__(self) -> int:
        return self.count

    def split_values(self):
        return self.array[self.offset:self.offset + self.count, :self.total_frames]

    def frames(self, index: int) -> np.ndarray:
        raw = self.array[self.offset + index, :self.total_frames]
        return ((np.asarray(raw, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def sample_source(self, index: int) -> str:
        return f'{self.source}, {self.key!r} row {self.offset + index}'


class XarrayTask(FieldTask):
    """Windows of ``T + T'`` steps of one variable of a netCDF or zarr dataset, opened lazily.

    The variable has dims ``(time, [channel], y, x)``. The time axis is split by fractions,
    ``(start, end)`` step ranges, or ``('YYYY-MM-DD', 'YYYY-MM-DD')`` date pairs (inclusive labels),
    and cut into windows every ``stride`` steps inside each split.

    Args:
        path: ``.nc`` file or ``.zarr`` store, relative to ``data_root`` or absolute.
        variable: the variable's name.
        time_dim: name of the time dimension; ``channel_dim``: of the channel one, if any.
        scale, mean, std: as :class:`ArrayTask` (statistics over the training time steps).
    """

    channel_axis = 1

    task = 'xarray'
    prepare_script = CUSTOM_HINT

    def __init__(self, data_root: PathLike, split: str, input_frames: int, output_frames: int,
                 path: PathLike = '', variable: str = '', time_dim: str = 'time', channel_dim: Optional[str] = None,
                 stride: int = 1, splits: SplitSpec = DEFAULT_SPLITS, scale: str = 'minmax',
                 mean: Scale = None, std: Scale = None) -> None:
        super().__init__(split, input_frames, output_frames)
        file = self.source = require_path(Path(data_root) / path, self.task, self.prepare_script)
        dataset = open_xarray(file)
        if variable not in dataset.data_vars:
            raise UserValueError(f'{file}: variable {variable!r} not found; variables: {sorted(dataset.data_vars)}')
        data = dataset[variable]
        check_array(file, variable, data)
        expected = (time_dim, channel_dim) if channel_dim else (time_dim,)
        if data.ndim != len(expected) + 2 or any(d not in data.dims for d in expected):
            raise UserValueError(f'{file}: {variable!r} has dims {data.dims}, expected '
                                 f"({', '.join(expected)}, y, x)")
        order = [*expected, *[d for d in data.dims if d not in expected]]
        data = data.transpose(*order)
        if channel_dim is None:
            data = data.expand_dims('channel', axis=1)
        self.frame_shape = tuple(int(s) for s in data.shape[1:])
        train_start, train_end = self._time_range(data, splits, 'train', time_dim, file)
        train = data.isel({time_dim: slice(train_start, train_end)})
        self.scale = scale
        self.mean, self.std = _scale(train, 1, scale, mean, std, file, variable, train_start, f'{time_dim} step')
        start, end = self._time_range(data, splits, split, time_dim, file)
        self.split_range = (start, end)
        self.data, self.time_dim, self.variable = data, time_dim, variable
        self.starts = start + window_starts([end - start], self.total_frames, stride)[:, 1]

    @staticmethod
    def _time_range(data, splits: SplitSpec, split: str, time_dim: str, file: PathLike) -> tuple[int, int]:
        bounds = splits.get(split)
        if isinstance(bounds, (list, tuple)) and bounds and isinstance(bounds[0], str):
            times = data[time_dim].to_index()
            start = int(times.searchsorted(np.datetime64(bounds[0]), side='left'))
            end = int(times.searchsorted(np.datetime64(bounds[1]), side='right'))
            return start, end
        return split_range(splits, split, data.sizes[time_dim], file)

    def __len__(self) -> int:
        return len(self.starts)

    def split_values(self):
        start, end = self.split_range
        return self.data.isel({self.time_dim: slice(start, end)})

    def frames(self, index: int) -> np.ndarray:
        start = int(self.starts[index])
        window = self.data.isel({self.time_dim: slice(start, start + self.total_frames)}).values
        return ((window.astype(np.float32) - self.mean) / self.std).astype(np.float32)

    def sample_source(self, index: int) -> str:
        start = int(self.starts[index])
        return f'{self.source}, {self.variable!r} {self.time_dim} steps {name_range(start, self.total_frames)}'
