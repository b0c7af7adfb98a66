"""KITTI raw driving videos (128 × 160 RGB) in the PredNet hickle layout that OpenSTL reads.

PredNet's ``process_kitti.py`` writes, for each split, ``X_<split>.hkl`` (uint8 frames
``(N, 128, 160, 3)``, recordings one after another) and ``sources_<split>.hkl`` (one
``'<category>-<recording>'`` name per frame). The released files were written by hickle 2 under
Python 2, which hickle ≥ 3 refuses to load under Python 3; they are HDF5 underneath, so this loader
reads them with h5py, and reads files re-written by hickle 4/5 too:

- hickle 1/2/3 (legacy): the array is the root dataset ``data_0`` (hickle 1: ``data``); the sources
  are a root dataset of byte strings;
- hickle 4/5: the array is the root dataset ``data``; a list of sources is a group that only
  hickle itself rebuilds, so the (small) sources file is then read with ``hickle.load``.

Frames are read per sample from the open HDF5 dataset: the 2+ GB training file is never loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import name_range, open_hdf5
from .lazy_files import PerProcessFiles, open_h5
from .windows import window_starts

FRAME_KEYS = ('data_0', 'data')
"""Root dataset names of a hickled array: hickle 2/3 (``data_0``), hickle 1 and 4/5 (``data``)."""


def hickle_dataset_key(handle, path: PathLike) -> str:
    """Name of the root HDF5 node that holds the hickled object in ``handle`` (file ``path``)."""
    for key in FRAME_KEYS:
        if key in handle:
            return key
    raise UserValueError(f'{path}: no hickled object found: expected a root key {list(FRAME_KEYS)}, '
                         f'found {sorted(handle.keys())}')


def read_sources(path: PathLike) -> np.ndarray:
    """``(N,)`` array of str: the source-recording name of every frame in a ``sources_*.hkl`` file."""
    import h5py

    with open_hdf5(path) as handle:
        node = handle[hickle_dataset_key(handle, path)]
        values = node[()] if isinstance(node, h5py.Dataset) else None
    if values is None:
        import hickle

        values = hickle.load(str(path))
    values = np.asarray(values)
    if values.ndim != 1:
        raise shape_error(path, 'sources', '(N,) names', values.shape)
    if values.dtype.kind == 'S':
        return np.char.decode(values, 'utf-8')
    if values.dtype.kind == 'O':
        return np.array([v.decode('utf-8') if isinstance(v, bytes) else str(v) for v in values])
    return values.astype(str)


def source_runs(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first frame, length)`` of every run of consecutive frames that share one source name."""
    if len(sources) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    firsts = np.concatenate([[0], np.flatnonzero(sources[1:] != sources[:-1]) + 1]).astype(np.int64)
    lengths = np.diff(np.concatenate([firsts, [len(sources)]])).astype(np.int64)
    return firsts, lengths


class KITTI(ForecastDataset):
    """KITTI, 10 → 10 by default; samples ``(T + T', 3, 128, 160)`` in [0, 1] (uint8 / 255).

    Splits read ``kitti_hkl/X_<split>.hkl`` and ``sources_<split>.hkl`` of the same name: ``train``
    and ``val`` as OpenSTL does, and ``test`` reads PredNet's KITTI test recordings
    (``X_test.hkl``), since the paper evaluates on KITTI itself rather than on Caltech, which is
    where OpenSTL's ``test`` goes.

    A sample is ``T + T'`` consecutive frames of one recording. ``stride=None`` cuts windows as
    OpenSTL does for every split: non-overlapping, aligned to the last frame of each recording
    (OpenSTL scans backwards from the last frame). ``stride=k`` instead starts a window every ``k``
    frames from each recording's first frame (PredNet trains with every start, ``k=1``; PredBench
    uses ``k=4`` for training on its own frame folders).
    The paper's Table 1 counts (9209 / 2198) are those of PredBench's own KITTI frame folders
    (other recordings, stride 4 / 1), which this layout cannot reproduce.
    """

    task = 'kitti'
    prepare_script = 'download_kitti.sh'
    frame_shape = (3, 128, 160)
    mean, std = 0.0, 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 10, output_frames: int = 10,
                 stride: Optional[int] = None) -> None:
        super().__init__(split, input_frames, output_frames)
        if stride is not None and stride < 1:
            raise UserValueError(f'kitti: stride must be ≥ 1 or None, got {stride}')
        folder = require_path(Path(data_root) / 'kitti_hkl', self.task, self.prepare_script)
        self.frames_path = self.source = require_path(folder / f'X_{self.split}.hkl', self.task, self.prepare_script)
        sources_path = require_path(folder / f'sources_{self.split}.hkl', self.task, self.prepare_script)
        self.frames_key, count = self._check_frames(self.frames_path)
        sources = read_sources(sources_path)
        if len(sources) != count:
            raise UserValueError(f'{sources_path}: holds {len(sources)} source names but '
                                 f'{self.frames_path} holds {count} frames')
        self.sources = sources
        self.starts = self._window_starts(sources, stride)
        self._files = PerProcessFiles(open_h5)

    def _check_frames(self, path: Path) -> tuple[str, int]:
        """Key and frame count of the uint8 ``(N, 128, 160, 3)`` array in ``path``."""
        import h5py

        with open_hdf5(path) as handle:
            key = hickle_dataset_key(handle, path)
            node = handle[key]
            if not isinstance(node, h5py.Dataset):
                raise UserValueError(f'{path}: {key!r} is a group, expected a uint8 array (N, 128, 160, 3)')
            if node.ndim != 4 or node.shape[1:] != (128, 160, 3):
                raise shape_error(path, key, '(N, 128, 160, 3)', node.shape)
            if node.dtype != np.uint8:
                raise UserValueError(f'{path}: {key!r} has dtype {node.dtype}, expected uint8')
            return key, int(node.shape[0])

    def _window_starts(self, sources: np.ndarray, stride: Optional[int]) -> np.ndarray:
        """``(K,)`` first frame (index into the file) of every window, in file order."""
        firsts, lengths = source_runs(sources)
        window = self.total_frames
        if stride is None:
            starts = window_starts(lengths, window, window)
            offsets = firsts[starts[:, 0]] + lengths[starts[:, 0]] % window
        else:
            starts = window_starts(lengths, window, stride)
            offsets = firsts[starts[:, 0]]
        if len(starts) == 0:
            self.check_sequence_length(int(lengths.max(initial=0)), self.frames_path)
        return np.sort(offsets + starts[:, 1])

    def __len__(self) -> int:
        return len(self.starts)

    def source_of(self, index: int) -> str:
        """Name of the recording that sample ``index`` comes from."""
        return str(self.sources[self.starts[index]])

    def frames(self, index: int) -> np.ndarray:
        start = int(self.starts[index])
        data = self._files.get(str(self.frames_path))[self.frames_key][start:start + self.total_frames]
        return data.transpose(0, 3, 1, 2).astype(np.float32) / 255.0

    def sample_source(self, index: int) -> str:
        frames = name_range(int(self.starts[index]), self.total_frames)
        return f'{self.frames_path}, {self.frames_key!r} frames {frames} (recording {self.source_of(index)})'
