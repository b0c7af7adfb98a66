"""TaxiBJ crowd flows (inflow/outflow, 2 × 32 × 32, half-hourly), OpenSTL or PredBench layout."""
from __future__ import annotations

import numpy as np

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import check_array, check_rows_finite, load_npy, load_npz, npz_member


class TaxiBJ(ForecastDataset):
    """TaxiBJ, 4 → 4 by default.

    ``format='openstl'``: ``taxibj/dataset.npz`` with ``X_train, Y_train, X_test, Y_test`` of shape
    ``(N, 4, 2, 32, 32)`` in [−1, 1]; model range ``(x + 1) / 2``. OpenSTL has no validation split:
    ``val`` reads the test arrays, as OpenSTL does.
    ``format='predbench'``: ``taxibj/{train,val,test}.npy`` of shape ``(N, T, 2, 32, 32)`` holding raw
    flow counts; model range ``x / 1250``. Both are small and read into memory, where the split's
    arrays are checked once for NaN/±Inf.
    """

    task = 'taxibj'
    prepare_script = 'download_taxibj.sh'
    frame_shape = (2, 32, 32)

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 4, output_frames: int = 4,
                 format: str = 'openstl') -> None:
        super().__init__(split, input_frames, output_frames)
        if format == 'openstl':
            self.mean, self.std = -1.0, 2.0
            sequences = self._read_openstl(data_root)
        elif format == 'predbench':
            self.mean, self.std = 0.0, 1250.0
            sequences = self._read_predbench(data_root)
        else:
            raise UserValueError(f"taxibj: unknown format {format!r}; expected 'openstl' or 'predbench'")
        self.sequences = sequences

    def _read_openstl(self, data_root: PathLike) -> np.ndarray:
        path = require_path(f'{data_root}/taxibj/dataset.npz', self.task, self.prepare_script)
        part = 'train' if self.split == 'train' else 'test'
        self.source, self.keys = path, (f'X_{part}', f'Y_{part}')
        with load_npz(path) as archive:
            arrays = []
            for key in self.keys:
                if key not in archive.files:
                    raise UserValueError(f'{path}: key {key!r} is missing; found {sorted(archive.files)}')
                array = npz_member(archive, path, key)
                check_array(path, key, array)
                if array.ndim != 5 or array.shape[2:] != self.frame_shape:
                    raise shape_error(path, key, '(N, T, 2, 32, 32)', array.shape)
                check_rows_finite(array, path, key)
                arrays.append(array)
        if arrays[0].shape[0] != arrays[1].shape[0]:
            raise UserValueError(f'{path}: X_{part} has {arrays[0].shape[0]} samples but Y_{part} has {arrays[1].shape[0]}')
        sequences = np.concatenate(arrays, axis=1)
        self.check_sequence_length(sequences.shape[1], path)
        return ((sequences + 1.0) / 2.0).astype(np.float32)

    def _read_predbench(self, data_root: PathLike) -> np.ndarray:
        path = require_path(f'{data_root}/taxibj/{self.split}.npy', self.task, self.prepare_script)
        self.source, self.keys = path, ('array',)
        array = load_npy(path, mmap=False)
        check_array(path, 'array', array)
        if array.ndim != 5 or array.shape[2:] != self.frame_shape:
            raise shape_error(path, 'array', '(N, T, 2, 32, 32)', array.shape)
        check_rows_finite(array, path, 'array')
        self.check_sequence_length(array.shape[1], path)
        return (array / 1250.0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.sequences)

    def frames(self, index: int) -> np.ndarray:
        return self.sequences[index, :self.total_frames]

    def sample_source(self, index: int) -> str:
        return f"{self.source}, {' and '.join(map(repr, self.keys))} row {index}"
