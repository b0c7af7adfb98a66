"""Cutting sequences of different lengths into fixed-length windows."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserValueError


def window_starts(lengths: Sequence[int], window: int, stride: int) -> np.ndarray:
    """``(K, 2)`` int64 array of ``(sequence index, first frame)`` of every window.

    Windows of ``window`` consecutive frames start every ``stride`` frames in each sequence and
    must fit inside it; sequences shorter than ``window`` give none.
    """
    if window < 1 or stride < 1:
        raise UserValueError(f'window and stride must be ≥ 1, got {window} and {stride}')
    rows = [np.stack([np.full(len(starts), i), starts], axis=1)
            for i, length in enumerate(lengths)
            if len(starts := np.arange(0, int(length) - window + 1, stride))]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), dtype=np.int64)
