"""The map between a task's physical values and the model range: ``physical = model · std + mean``.

One ``(mean, std)`` pair serves every channel (the loaders of today), or one pair per channel
(per-channel scaling of custom data); either way it broadcasts over frames ``(..., C, H, W)`` as
``(C, 1, 1)``. It is plain data, saved with trained models so that forecasts come back in the
units of the files they were trained on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch

from ..errors import UserValueError

Values = Union[float, Sequence[float], np.ndarray, torch.Tensor]


def _floats(values: Values, name: str, where: str) -> tuple[float, ...]:
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if array.ndim > 1 and all(n == 1 for n in array.shape[1:]):  # a loader's per-channel (C, 1, 1)
        array = array.reshape(array.shape[0])
    if array.ndim > 1 or array.size == 0:
        raise UserValueError(f'{where}: {name} must be a number or one number per channel, got shape {array.shape}')
    floats = tuple(float(v) for v in array.reshape(-1))
    if not all(math.isfinite(v) for v in floats):
        raise UserValueError(f'{where}: {name} must be finite, got {list(floats)}')
    return floats


@dataclass(frozen=True)
class Scaling:
    """``physical = model · std + mean`` with ``mean``/``std`` one value or ``C`` values.

    Attributes:
        mean, std: tuples of length 1 (every channel) or ``C`` (per channel); ``std`` never 0.
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        mean, std = _floats(self.mean, 'mean', 'scaling'), _floats(self.std, 'std', 'scaling')
        if len(mean) != len(std) and 1 not in (len(mean), len(std)):
            raise UserValueError(f'scaling: mean has {len(mean)} values and std {len(std)}; give one or C of each')
        if any(s == 0 for s in std):
            raise UserValueError(f'scaling: std must not be 0, got {list(std)}')
        object.__setattr__(self, 'mean', mean)
        object.__setattr__(self, 'std', std)

    @classmethod
    def of(cls, mean: Values, std: Values) -> 'Scaling':
        """From numbers, per-channel sequences, arrays or tensors (a loader's ``.mean``/``.std``)."""
        return cls(_floats(mean, 'mean', 'scaling'), _floats(std, 'std', 'scaling'))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = 'scaling') -> 'Scaling':
        """From ``{'mean': ..., 'std': ...}`` (:meth:`as_dict`); ``where`` names the source in errors."""
        missing = [key for key in ('mean', 'std') if key not in data]
        if missing:
            raise UserValueError(f'{where}: missing key(s) {missing}; expected {{"mean": ..., "std": ...}}')
        return cls(_floats(data['mean'], 'mean', where), _floats(data['std'], 'std', where))

    def as_dict(self) -> dict[str, list[float]]:
        return {'mean': list(self.mean), 'std': list(self.std)}

    @property
    def channels(self) -> int:
        """Number of channels the scaling is specific to (1: the same for every channel)."""
        return max(len(self.mean), len(self.std))

    def check_channels(self, channels: int, task: str) -> None:
        """Raise if a per-channel scaling does not have one value per channel of ``task``."""
        if self.channels not in (1, channels):
            raise UserValueError(f"task '{task}': its scaling has {self.channels} channels, the task has {channels}")

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
