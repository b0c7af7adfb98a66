"""Moving MNIST: two MNIST digits bouncing in a 64 × 64 canvas, OpenSTL layout.

Training sequences are generated from the MNIST training digits with OpenSTL's trajectory
model; validation and test read the fixed sequences of Srivastava et al. (2015).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import UnreadableFileError, check_array
from .lazy_files import PerProcessFiles, open_npy

IDX_IMAGES_MAGIC = 2051
"""Magic number of an idx file of unsigned-byte images (3 dimensions: count, rows, columns)."""
DIGIT_SIZE = 28
CANVAS_SIZE = 64
STEP_LENGTH = 0.1
"""Distance a digit moves per frame, in units of the free range ``CANVAS_SIZE - DIGIT_SIZE``."""
NUM_DIGITS = 2


def read_idx_images(path: PathLike) -> np.ndarray:
    """``(N, 28, 28)`` uint8 digits of a gzip-compressed idx3 file (MNIST's own format).

    The 16-byte big-endian header (magic 2051, count, rows, columns) is checked against the
    payload; a wrong header is a ``ValueError`` naming the file.
    """
    try:
        with gzip.open(path, 'rb') as file:
            data = file.read()
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableFileError(f'{path}: not a readable gzip file ({error})') from error
    if len(data) < 16:
        raise UserValueError(f'{path}: {len(data)} bytes, expected an idx header of 16 bytes and images')
    magic, count, rows, cols = (int(v) for v in np.frombuffer(data, dtype='>i4', count=4))
    if magic != IDX_IMAGES_MAGIC:
        raise UserValueError(f'{path}: idx magic number is {magic}, expected {IDX_IMAGES_MAGIC} '
                             '(unsigned-byte images: count, rows, columns)')
    if (rows, cols) != (DIGIT_SIZE, DIGIT_SIZE) or count < 1:
        raise UserValueError(f'{path}: idx header gives {count} images of {rows}×{cols}, '
                             f'expected N ≥ 1 images of {DIGIT_SIZE}×{DIGIT_SIZE}')
    payload = len(data) - 16
    if payload != count * rows * cols:
        raise UserValueError(f'{path}: idx header gives {count} images of {rows}×{cols} = '
                             f'{count * rows * cols} bytes, the file holds {payload}')
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def bounce_trajectory(x: float, y: float, theta: float, length: int,
                      free_range: int = CANVAS_SIZE - DIGIT_SIZE,
                      step_length: float = STEP_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """``(tops, lefts)``, each ``(length,)`` int, of a digit starting at ``(x, y)`` in [0, 1]².

    OpenSTL's model: constant speed ``step_length`` in direction ``theta``; every frame first
    moves, then a coordinate that reaches 0 or 1 is clamped there and its direction reversed.
    Positions are scaled by ``free_range`` and truncated to pixels; ``x`` is the column.
    """
    velocity = np.array([np.cos(theta), np.sin(theta)]) * step_length
    position = np.array([x, y], dtype=np.float64)
    direction = np.ones(2)
    path = np.empty((length, 2))
    for frame in range(length):
        position += direction * velocity
        low, high = position <= 0.0, position >= 1.0
        position = np.clip(position, 0.0, 1.0)
        direction = np.where(low, -direction, direction)
        direction = np.where(high, -direction, direction)
        path[frame] = position
    pixels = (free_range * path).astype(np.int32)
    return pixels[:, 1], pixels[:, 0]


class MovingMNIST(ForecastDataset):
    """Moving MNIST, 10 → 10 by default; frames ``(1, 64, 64)``, model range ``x / 255``.

    ``train``: ``num_train_sequences`` sequences drawn on the fly from
    ``moving_mnist/train-images-idx3-ubyte.gz``. Sequence ``index`` uses a generator seeded with
    ``(seed, index)``, so it is the same in every epoch, process and worker (OpenSTL draws from
    the global ``random`` instead). ``val`` and ``test`` read ``moving_mnist/mnist_test_seq.npy``,
    uint8 ``(20, N, 64, 64)``, time first, memory-mapped; OpenSTL has no validation split and
    validates on the test sequences, and so does this loader.
    """

    task = 'mmnist'
    prepare_script = 'download_mmnist.sh'
    frame_shape = (1, CANVAS_SIZE, CANVAS_SIZE)
    mean = 0.0
    std = 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 10, output_frames: int = 10,
                 num_train_sequences: int = 10000, seed: int = 0) -> None:
        super().__init__(split, input_frames, output_frames)
        self.seed = seed
        if self.split == 'train':
            if num_train_sequences < 1:
                raise UserValueError(f'mmnist: num_train_sequences must be ≥ 1, got {num_train_sequences}')
            path = require_path(f'{data_root}/moving_mnist/train-images-idx3-ubyte.gz', self.task, self.prepare_script)
            self.digits = read_idx_images(path)
            self.length = num_train_sequences
            self.source = path
        else:
            self.path = self.source = require_path(f'{data_root}/moving_mnist/mnist_test_seq.npy', self.task,
                                                   self.prepare_script)
            self.length = self._check_fixed_set(self.path)
            self._files = PerProcessFiles(open_npy)

    def _check_fixed_set(self, path: Path) -> int:
        """Number of sequences in the fixed set, after checking its dtype and shape."""
        array = open_npy(path)
        check_array(path, 'array', array)
        if array.ndim != 4 or array.shape[2:] != self.frame_shape[1:]:
            raise shape_error(path, 'array', '(T, N, 64, 64) with time first', array.shape)
        if array.dtype != np.uint8:
            raise UserValueError(f'{path}: dtype is {array.dtype}, expected uint8')
        self.check_sequence_length(array.shape[0], path)
        return array.shape[1]

    def __len__(self) -> int:
        return self.length

    def layout(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Digit indices ``(2,)``, tops and lefts ``(2, T + T')`` of training sequence ``index``."""
        rng = np.random.default_rng([self.seed, index])
        digits = np.empty(NUM_DIGITS, dtype=np.int64)
        tops = np.empty((NUM_DIGITS, self.total_frames), dtype=np.int32)
        lefts = np.empty_like(tops)
        for n in range(NUM_DIGITS):
            x, y, turn = rng.random(3)
            tops[n], lefts[n] = bounce_trajectory(x, y, turn * 2 * np.pi, self.total_frames)
            digits[n] = rng.integers(len(self.digits))
        return digits, tops, lefts

    def generate(self, index: int) -> np.ndarray:
        """``(T + T', 64, 64)`` uint8 training sequence ``index``: digits combined by maximum."""
        digits, tops, lefts = self.layout(index)
        canvas = np.zeros((self.total_frames, CANVAS_SIZE, CANVAS_SIZE), dtype=np.uint8)
        for digit, top, left in zip(digits, tops, lefts):
            image = self.digits[digit]
            for frame in range(self.total_frames):
                window = canvas[frame, top[frame]:top[frame] + DIGIT_SIZE, left[frame]:left[frame] + DIGIT_SIZE]
                np.maximum(window, image, out=window)
        return canvas

    def frames(self, index: int) -> np.ndarray:
        index = range(self.length)[index]
        if self.split == 'train':
            sequence = self.generate(index)
        else:
            sequence = np.asarray(self._files.get(self.path)[:self.total_frames, index])
        return (sequence.astype(np.float32) / self.std)[:, None]

    def sample_source(self, index: int) -> str:
        if self.split == 'train':
            return f'sequence {index} drawn from the digits of {self.source}'
        return f'{self.source}, sequence {index} (axis 1)'
