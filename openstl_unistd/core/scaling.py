"""The map between a task's physical values and the model range: ``physical = model · std + mean``.

One ``(mean, std)`` pair serves every channel (the loaders of today), or one pair per channel
(per-channel scaling of custom data); either way it broadcasts over frames ``(..., C, H, W)`` as
``(C, 1, 1)``. It is plain data, saved with trained models so that forecasts come back in the
units of the files they were trained on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import UserValueError

Values = Union[float, Sequence[float], np.ndarray, torch.Tensor]


class ScalingError(UserValueError):
    """A ``mean``/``std`` pair that cannot map model values to physical ones."""


def _floats(values: Values, name: str, where: str, channels: Optional[int]) -> tuple[float, ...]:
    """``values`` as a tuple of floats: one (every channel) or one per channel; with ``channels`` given, exactly
    that many (one value is repeated)."""
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if array.ndim > 1 and all(n == 1 for n in array.shape[1:]):  # a loader's per-channel (C, 1, 1)
        array = array.reshape(array.shape[0])
    if array.ndim > 1 or array.size == 0:
        raise ScalingError(f'{where}: {name} must be a number or one number per channel, got shape {array.shape}')
    array = array.reshape(-1)
    if channels is not None:
        if array.size == 1:
            array = np.repeat(array, channels)
        if array.size != channels:
            raise ScalingError(f'{where}: {name} has {array.size} values, expected 1 or one per channel ({channels})')
    return tuple(float(v) for v in array)


def _checked(mean: Values, std: Values, where: str, channels: Optional[int] = None
             ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The one check of a scaling: ``mean``/``std`` of one value or one per channel (``channels`` of each when
    given), finite, ``std ≠ 0``; a :class:`ScalingError` naming ``where`` and the values otherwise."""
    mean_, std_ = _floats(mean, 'mean', where, channels), _floats(std, 'std', where, channels)
    if len(mean_) != len(std_) and 1 not in (len(mean_), len(std_)):
        raise ScalingError(f'{where}: mean has {len(mean_)} values and std {len(std_)}; expected 1 or C of each')
    if not all(math.isfinite(v) for v in mean_ + std_) or 0.0 in std_:
        raise ScalingError(f'{where}: normalization mean={list(mean_)}, std={list(std_)}; '
                           'expected finite values and std ≠ 0')
    return mean_, std_


@dataclass(frozen=True)
class Scaling:
    """``physical = model · std + mean`` with ``mean``/``std`` one value or ``C`` values.

    The one type of a task's scaling, from its loader (``ForecastDataset.scaling``) to its metrics
    (``ForecastMetrics``) and the model card; its constructors are the one check of a pair.

    Attributes:
        mean, std: tuples of length 1 (every channel) or ``C`` (per channel); ``std`` never 0.
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        mean, std = _checked(self.mean, self.std, 'scaling')
        object.__setattr__(self, 'mean', mean)
        object.__setattr__(self, 'std', std)

    @classmethod
    def of(cls, mean: Values, std: Values, where: str = 'scaling', channels: Optional[int] = None) -> 'Scaling':
        """From numbers, per-channel sequences, arrays or tensors (a loader's ``.mean``/``.std``); ``where`` (the
        task, file or key) is named in errors; ``channels``: one value per channel, a single one repeated."""
        return cls(*_checked(mean, std, where, channels))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = 'scaling') -> 'Scaling':
        """From ``{'mean': ..., 'std': ...}`` (:meth:`as_dict`); ``where`` names the source in errors."""
        missing = [key for key in ('mean', 'std') if key not in data]
        if missing:
            raise ScalingError(f'{where}: missing key(s) {missing}; expected {{"mean": ..., "std": ...}}')
        return cls.of(data['mean'], data['std'], where)

    def as_dict(self) -> dict[str, list[float]]:
        return {'mean': list(self.mean), 'std': list(self.std)}

    @property
    def channels(self) -> int:
        """Number of channels the scaling is specific to (1: the same for every channel)."""
        return max(len(self.mean), len(self.std))

    def check_channels(self, channels: int, task: str) -> None:
        """Raise if a per-channel scaling does not have one value per channel of ``task``."""
        if self.channels not in (1, channels):
            raise ScalingError(f"task '{task}': its scaling has {self.channels} channels, the task has {channels}")

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``mean``, ``std`` as ``(C or 1, 1, 1)`` float32 arrays: a loader's precision, so that scaling by them
        and by this scaling's saved values is bit-identical."""
        return (np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1),
                np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean``, ``std`` as ``(C or 1, 1, 1)`` tensors of ``x``'s dtype and device."""
        options = dict(dtype=x.dtype, device=x.device)
        return (torch.tensor(self.mean, **options).view(-1, 1, 1), torch.tensor(self.std, **options).view(-1, 1, 1))

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Physical frames ``(..., C, H, W)`` → model range, ``(x − mean) / std``."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def to_physical(self, y: torch.Tensor) -> torch.Tensor:
        """Model-range frames ``(..., C, H, W)`` → physical values, ``y · std + mean``."""
        mean, std = self._stats(y)
        return y * std + mean
