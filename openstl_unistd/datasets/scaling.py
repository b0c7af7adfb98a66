"""Per-channel scaling of a user's field to the model range, fitted on the training split.

``model = (physical − mean) / std`` per channel (``mean``/``std`` of shape ``(C, 1, 1)``, so they
broadcast over ``(T, C, H, W)`` and ``(B, T, C, H, W)`` alike):

- ``'minmax'``: ``mean`` the channel's training minimum, ``std`` its range → training data in [0, 1]
  (OpenSTL's image convention; the default).
- ``'standard'``: ``mean``/``std`` the channel's training mean and standard deviation → training data
  centred at 0 with unit spread (signed fields: anomalies, velocities, waves).

A scaling that squeezes the data (99% of the training values inside 10% of the model range they
span, as min–max does to a field with rare large values) is reported with a warning: a model then
learns a flat field that beats copying the last frame and loses to predicting the mean.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import UserValueError
from ..core.scaling import Scaling, ScalingError
from .checks import DataError

SCALES = ('minmax', 'standard')
SQUEEZE_SHARE, SQUEEZE_WIDTH = 0.99, 0.10
"""The squeeze warning: ``SQUEEZE_SHARE`` of the training values within ``SQUEEZE_WIDTH`` of the range."""

Scale = Union[float, Sequence[float], None]


class ScalingWarning(UserWarning):
    """A scaling leaves the training values in a sliver of the model range."""


def _chunks(values, rows: int = 64):
    """``values`` (numpy, a memory-mapped array or an xarray ``DataArray``) as float64 numpy chunks
    along its first axis, so a large file is read once and never held whole in memory."""
    for first in range(0, values.shape[0], rows):
        yield np.asarray(values[first:first + rows], dtype=np.float64)


def channel_statistics(values, channel_axis: int) -> dict[str, np.ndarray]:
    """Per-channel ``min``, ``max``, ``mean`` and ``std`` (``(C,)`` float64) of ``values`` in one pass."""
    if channel_axis == 0:
        raise UserValueError('channel_axis must not be the first axis (the one read in chunks)')
    channels = values.shape[channel_axis]
    low, high = np.full(channels, np.inf), np.full(channels, -np.inf)
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for chunk in _chunks(values):
        chunk = np.moveaxis(chunk, channel_axis, 0).reshape(channels, -1)
        low, high = np.minimum(low, chunk.min(axis=1)), np.maximum(high, chunk.max(axis=1))
        total += chunk.sum(axis=1)
        squares += np.square(chunk).sum(axis=1)
        count += chunk.shape[1]
    mean = total / max(count, 1)
    return {'min': low, 'max': high, 'mean': mean, 'std': np.sqrt(np.maximum(squares / max(count, 1) - mean ** 2, 0))}


def fit_scaling(train_values, channel_axis: int, scale: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of shape ``(C, 1, 1)`` for ``scale`` from the training values."""
    if scale not in SCALES:
        raise DataError(f"{source}: scale must be one of {SCALES}, got {scale!r}")
    stats = channel_statistics(train_values, channel_axis)
    if scale == 'minmax':
        mean, std = stats['min'], stats['max'] - stats['min']
    else:
        mean, std = stats['mean'], stats['std']
    std = np.where(std == 0, 1.0, std)  # a constant channel: shifted to 0, not divided by 0
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):  # NaN/±Inf in the data: the caller names them
        return mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
    return as_channel_scale(mean, std, len(mean), source)


def as_channel_scale(mean: Scale, std: Scale, channels: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Given ``mean``/``std`` (a number for all channels or one per channel) as ``(C, 1, 1)`` float32 arrays
    (the data's precision, so that scaling by them and by their saved values is bit-identical), checked by
    :class:`~openstl_unistd.core.scaling.Scaling`'s one validator: a ``DataError`` naming ``source`` if their
    length, finiteness or ``std ≠ 0`` is wrong."""
    try:
        return Scaling.of(np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32), source,
                          channels).arrays()
    except ScalingError as error:
        raise DataError(str(error)) from None


def squeezed_channels(train_values, channel_axis: int, mean: np.ndarray, std: np.ndarray,
                      max_values: int = 1_000_000) -> list[tuple[int, float]]:
    """Channels whose central ``SQUEEZE_SHARE`` of training values (in model units) spans less than
    ``SQUEEZE_WIDTH`` of the full range they span: ``[(channel, share of the range), ...]``.

    Computed on at most about ``max_values`` values per channel, rows taken evenly along the first axis.
    """
    per_row = int(np.prod(train_values.shape)) // (train_values.shape[0] * train_values.shape[channel_axis])
    step = max(1, train_values.shape[0] * per_row // max_values)
    values = np.asarray(train_values[::step] if not hasattr(train_values, 'dims') else
                        train_values[::step].values, dtype=np.float64)
    values = np.moveaxis(values, channel_axis, 0).reshape(values.shape[channel_axis], -1)
    found = []
    tail = (1 - SQUEEZE_SHARE) / 2
    for channel, row in enumerate(values):
        model = (row.astype(np.float64) - mean.ravel()[channel]) / std.ravel()[channel]
        low, high = model.min(), model.max()
        if high <= low:
            continue
        central = np.quantile(model, 1 - tail) - np.quantile(model, tail)
        if central < SQUEEZE_WIDTH * (high - low):
            found.append((channel, float(central / (high - low))))
    return found


def warn_if_squeezed(train_values, channel_axis: int, mean: np.ndarray, std: np.ndarray, scale: str,
                     source: str) -> None:
    """A :class:`ScalingWarning` naming ``source`` and the channels :func:`squeezed_channels` finds."""
    squeezed = squeezed_channels(train_values, channel_axis, mean, std)
    if squeezed:
        channels = ', '.join(f'channel {c}: {share:.1%}' for c, share in squeezed)
        warnings.warn(f"{source}: with scale='{scale}', {SQUEEZE_SHARE:.0%} of the training values lie in a "
                      f'sliver of the range they span ({channels}; warned below {SQUEEZE_WIDTH:.0%}): a model can '
                      "then score well by predicting a flat field. Rare large values dominate the range; "
                      "consider scale='standard' or clipping them", ScalingWarning, stacklevel=3)


def model_range_of(values, mean: np.ndarray, std: np.ndarray, channel_axis: int) -> Optional[float]:
    """``max − min`` of ``values`` in model units over all channels (the data range of PSNR/SSIM for
    field tasks), or ``None`` for an empty split."""
    if np.asarray(values.shape).prod() == 0:
        return None
    stats = channel_statistics(values, channel_axis)
    model_low = (stats['min'] - mean.ravel()) / std.ravel()
    model_high = (stats['max'] - mean.ravel()) / std.ravel()
    return float(model_high.max() - model_low.min())
