"""What every task dataset shares: samples ``(x, y)`` in model range and the way back to physical values.

A loader reads one public format as it is on disk. It yields ``x (T, C, H, W)`` and
``y (T', C, H, W)`` as float32 tensors in the model range of docs/datasets.md, and records
``physical = model · std + mean`` in ``mean``/``std`` (the numbers its reading uses, and the attributes
OpenSTL's test loop reads). Everything downstream takes them as one
:class:`~openstl_unistd.core.scaling.Scaling`, :attr:`ForecastDataset.scaling`: the metrics, so that they
run on the file's own values, and the model card.

Every sample is checked as it is read (:meth:`ForecastDataset.__getitem__`): a file that cannot be
read, or NaN/±Inf in the frames, raises an error naming the task, split, sample index and file
(see ``checks.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserValueError
from ..core.scaling import Scaling
from .checks import DataError, NonFiniteError, UnreadableFileError, all_finite, describe_non_finite, is_read_error

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


def shape_error(file: PathLike, key: str, expected: str, actual: Sequence[int]) -> DataError:
    """The error for an array of the wrong shape: file, key, expected and actual."""
    return DataError(f'{file}: {key!r} has shape {tuple(actual)}, expected {expected}')


def check_split(split: str, task: str) -> str:
    if split not in SPLITS:
        raise UserValueError(f"{task}: unknown split {split!r}; expected one of {SPLITS}")
    return split


class ForecastDataset(Dataset):
    """Base of every task dataset.

    Subclasses set ``frame_shape`` ``(C, H, W)``, ``mean``, ``std`` and ``source`` and implement
    ``__len__``, :meth:`frames`, which returns the ``T + T'`` frames of sample ``index`` in model
    range, and :meth:`sample_source`, which says where they come from (for error messages).
    """

    task = 'task'
    prepare_script = ''
    frame_shape: tuple[int, int, int]
    mean: float = 0.0
    std: float = 1.0
    source: PathLike = ''
    """The file or folder this split is read from (for error messages)."""
    task_name: str = ''
    """Name of the task this dataset serves, set by ``build_dataset`` (else the loader's ``task``)."""

    def __init__(self, split: str, input_frames: int, output_frames: int) -> None:
        self.split = check_split(split, self.task)
        if input_frames < 1 or output_frames < 1:
            raise UserValueError(f'{self.task}: input_frames and output_frames must be ≥ 1, '
                                 f'got {input_frames} and {output_frames}')
        self.input_frames = input_frames
        self.output_frames = output_frames

    @property
    def scaling(self) -> Scaling:
        """``mean``/``std`` as the :class:`~openstl_unistd.core.scaling.Scaling` the metrics and the model card use
        (checked: an error naming the task and split if they are not a valid pair)."""
        return Scaling.of(self.mean, self.std, f"task '{self.task_name or self.task}', split '{self.split}'")

    @property
    def data_name(self) -> str:
        return self.task

    @property
    def total_frames(self) -> int:
        return self.input_frames + self.output_frames

    def check_sequence_length(self, available: int, source: PathLike) -> None:
        """Raise if the format's sequences are shorter than ``T + T'``."""
        if available < self.total_frames:
            raise UserValueError(
                f'{self.task}: {source} holds sequences of {available} frames, fewer than '
                f'input_frames + output_frames = {self.input_frames} + {self.output_frames}')

    def frames(self, index: int) -> np.ndarray:
        """``(T + T', C, H, W)`` frames of sample ``index`` in model range."""
        raise NotImplementedError

    def sample_source(self, index: int) -> str:
        """Where sample ``index`` is read from: file, key and position (for error messages)."""
        return str(self.source or self.task)

    def describe(self, index: int) -> str:
        """``"task 'kth', split 'train', sample 12"``: the culprit's name in error messages."""
        return f"task '{self.task_name or self.task}', split '{self.split}', sample {index}"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (T, C, H, W)``, ``y (T', C, H, W)`` float32; raises naming the sample if it cannot be read
        or holds NaN/±Inf (one sum per sample: the full test runs only if that sum is not finite)."""
        try:
            frames = self.frames(index)
        except DataError as error:
            error.args = (f'{self.describe(index)}: {error}',)
            raise
        except Exception as error:
            if not is_read_error(error):
                raise
            raise UnreadableFileError(f'{self.describe(index)}: cannot read {self.sample_source(index)} '
                                      f"({type(error).__name__}: {' '.join(str(error).split())})") from error
        frames = self.check_finite(torch.as_tensor(np.ascontiguousarray(frames), dtype=torch.float32),
                                   index, 'frames', '(t, c, h, w)')
        return frames[:self.input_frames], frames[self.input_frames:self.total_frames]

    def check_finite(self, values: torch.Tensor, index: int, what: str, axes: str,
                     source: Optional[str] = None) -> torch.Tensor:
        """``values`` (``what`` of sample ``index``, read from ``source``, by default :meth:`sample_source`)
        if all are finite, else a ``NonFiniteError`` naming the sample."""
        if not all_finite(values):
            raise NonFiniteError(
                f'{self.describe(index)}: {what} read from {source or self.sample_source(index)} hold '
                f'{describe_non_finite(values, axes)} (in model range: NaN/±Inf in the file, or values too '
                'large for float32); fix or remove this sample, it would make every loss and metric NaN')
        return values
