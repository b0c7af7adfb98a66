"""What every task dataset shares: samples ``(x, y)`` in model range and the way back to physical values.

A loader reads one public format as it is on disk. It yields ``x (T, C, H, W)`` and
``y (T', C, H, W)`` as float32 tensors in the model range of DATASETS.md, and records
``physical = model · std + mean`` in ``mean``/``std`` (the attributes OpenSTL's test loop reads)
so that metrics can run on the file's own values.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

PathLike = Union[str, Path]
SPLITS = ('train', 'val', 'test')


def prepare_hint(script: str) -> str:
    return f'see tools/prepare_data/{script} for where to download it and how to lay it out'


def require_path(path: PathLike, task: str, script: str) -> Path:
    """``path`` if it exists, else a ``FileNotFoundError`` naming it, the task and the prepare script."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{task}: {path} not found; {prepare_hint(script)}")
    return path


def shape_error(file: PathLike, key: str, expected: str, actual: Sequence[int]) -> ValueError:
    """The error for an array of the wrong shape: file, key, expected and actual."""
    return ValueError(f'{file}: {key!r} has shape {tuple(actual)}, expected {expected}')


def check_split(split: str, task: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"{task}: unknown split {split!r}; expected one of {SPLITS}")
    return split


class ForecastDataset(Dataset):
    """Base of every task dataset.

    Subclasses set ``frame_shape`` ``(C, H, W)``, ``mean`` and ``std`` and implement ``__len__``
    and :meth:`frames`, which returns the ``T + T'`` frames of sample ``index`` in model range.
    """

    task = 'task'
    prepare_script = ''
    frame_shape: tuple[int, int, int]
    mean: float = 0.0
    std: float = 1.0

    def __init__(self, split: str, input_frames: int, output_frames: int) -> None:
        self.split = check_split(split, self.task)
        if input_frames < 1 or output_frames < 1:
            raise ValueError(f'{self.task}: input_frames and output_frames must be ≥ 1, '
                             f'got {input_frames} and {output_frames}')
        self.input_frames = input_frames
        self.output_frames = output_frames

    @property
    def data_name(self) -> str:
        return self.task

    @property
    def total_frames(self) -> int:
        return self.input_frames + self.output_frames

    def check_sequence_length(self, available: int, source: PathLike) -> None:
        """Raise if the format's sequences are shorter than ``T + T'``."""
        if available < self.total_frames:
            raise ValueError(
                f'{self.task}: {source} holds sequences of {available} frames, fewer than '
                f'input_frames + output_frames = {self.input_frames} + {self.output_frames}')

    def frames(self, index: int) -> np.ndarray:
        """``(T + T', C, H, W)`` frames of sample ``index`` in model range."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.as_tensor(np.ascontiguousarray(self.frames(index)), dtype=torch.float32)
        return frames[:self.input_frames], frames[self.input_frames:self.total_frames]

    def denormalize(self, values):
        """Model-range values → the file's physical values."""
        return values * self.std + self.mean
