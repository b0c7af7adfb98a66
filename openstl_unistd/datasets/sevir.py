"""SEVIR vertically integrated liquid (VIL) radar mosaics, 384 × 384, 5-minute frames, 49 per event.

``format='earthformer'`` (default), the public release as Earthformer reads it::

    sevir/CATALOG.csv                      one row per (event, image type); columns id, file_name,
                                           file_index, img_type, time_utc, pct_missing, …
    sevir/data/vil/<year>/SEVIR_VIL_*.h5   dataset 'vil', (N, 384, 384, 49) uint8; row file_index is the event

``format='predbench'``: ``sevir/{train,val,test}/*.npy``, one event per file, (1, 384, 384, 49).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import UnreadableFileError, check_array, load_npy, name_range, open_hdf5
from .lazy_files import PerProcessFiles, open_h5
from .windows import window_starts

FRAME = (384, 384)
"""``(H, W)`` of a VIL frame."""
CATALOG_COLUMNS = ('id', 'file_name', 'file_index', 'img_type', 'time_utc', 'pct_missing')
"""Catalog columns the Earthformer layout needs."""


class SEVIR(ForecastDataset):
    """SEVIR VIL, 13 → 12 by default.

    Each event (49 frames) is cut into windows of ``seq_len`` frames starting every ``stride``
    frames (0, 12, 24 for 25 and 12, Earthformer's ``sequent`` sampling and PredBench's
    ``frame_stride``); a sample is the first ``T + T'`` frames of a window. Model range ``x / 255``.

    Earthformer split by the catalog's ``time_utc``, bounds as Earthformer applies them:
    train ``time_utc ≤ train_val_split``, val ``train_val_split < time_utc ≤ train_test_split``,
    test ``time_utc > train_test_split``. Rows kept as Earthformer keeps them: ``img_type == 'vil'``,
    ``pct_missing == 0``, ids with exactly one VIL row; events ordered by id.
    PredBench: every ``.npy`` of ``sevir/<split>/``, in name order.

    Only the window is read: an h5py slice ``vil[file_index, :, :, t0:t1]`` (one handle per process),
    or a slice of a memory-mapped ``.npy``.
    """

    task = 'sevir'
    prepare_script = 'download_sevir.sh'
    frame_shape = (1, 384, 384)
    mean = 0.0
    std = 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 13, output_frames: int = 12,
                 format: str = 'earthformer', seq_len: int = 25, stride: int = 12,
                 train_val_split: str = '2019-01-01', train_test_split: str = '2019-06-01') -> None:
        super().__init__(split, input_frames, output_frames)
        self.check_sequence_length(seq_len, f'seq_len={seq_len}')
        self.format = format
        root = Path(data_root) / 'sevir'
        if format == 'earthformer':
            lengths = self._index_earthformer(root, pd.Timestamp(train_val_split), pd.Timestamp(train_test_split))
        elif format == 'predbench':
            lengths = self._index_predbench(root)
        else:
            raise UserValueError(f"sevir: unknown format {format!r}; expected 'earthformer' or 'predbench'")
        self.windows = window_starts(lengths, seq_len, stride)
        self._files = PerProcessFiles(open_h5)

    def _index_earthformer(self, root: Path, val_start: pd.Timestamp, test_start: pd.Timestamp) -> list[int]:
        """Select this split's events from the catalog; check every file they name. Returns event lengths."""
        catalog_path = self.source = require_path(root / 'CATALOG.csv', self.task, self.prepare_script)
        try:
            catalog = pd.read_csv(catalog_path, low_memory=False)
        except ValueError as error:  # pandas' ParserError and EmptyDataError, UnicodeDecodeError
            raise UnreadableFileError(f'{catalog_path}: not a readable CSV catalog ({type(error).__name__}: '
                                      f'{error})') from error
        missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
        if missing:
            raise UserValueError(f'{catalog_path}: column(s) {missing} missing; expected {list(CATALOG_COLUMNS)}, '
                                 f'found {list(catalog.columns)}')
        try:
            time = pd.to_datetime(catalog['time_utc'], format='ISO8601')
        except (ValueError, TypeError) as error:
            raise UserValueError(f"{catalog_path}: column 'time_utc' must hold dates such as "
                                 f"'2019-06-01 00:00:00': {error}") from None
        in_split = {'train': time <= val_start,
                    'val': (time > val_start) & (time <= test_start),
                    'test': time > test_start}[self.split]
        rows = catalog[in_split & (catalog['pct_missing'] == 0) & (catalog['img_type'] == 'vil')]
        rows = rows[~rows['id'].duplicated(keep=False)].sort_values('id', kind='stable')
        data_dir = root / 'data'
        self.files = [str(data_dir / name) for name in rows['file_name']]
        self.indices = rows['file_index'].to_numpy(dtype=np.int64)
        self.event_ids = rows['id'].astype(str).tolist()
        lengths = {}
        for name, group in rows.groupby('file_name'):
            path = require_path(data_dir / name, self.task, self.prepare_script)
            with open_hdf5(path) as f:
                if 'vil' not in f:
                    raise UserValueError(f"{path}: key 'vil' is missing; found {sorted(f.keys())}")
                check_array(path, 'vil', f['vil'])
                shape = f['vil'].shape
            if len(shape) != 4 or tuple(shape[1:3]) != FRAME:
                raise shape_error(path, 'vil', '(N, 384, 384, T)', shape)
            largest = int(group['file_index'].max())
            if largest >= shape[0]:
                raise UserValueError(f"{path}: {catalog_path.name} names file_index {largest} but 'vil' holds "
                                     f'{shape[0]} events (shape {tuple(shape)})')
            lengths[name] = int(shape[3])
        return [lengths[name] for name in rows['file_name']]

    def _index_predbench(self, root: Path) -> list[int]:
        """List this split's ``.npy`` events and check their shapes (headers only). Returns event lengths."""
        folder = self.source = require_path(root / self.split, self.task, self.prepare_script)
        self.files = [str(p) for p in sorted(folder.glob('*.npy'))]
        self.indices = np.zeros(len(self.files), dtype=np.int64)
        self.event_ids = [Path(p).stem for p in self.files]
        lengths = []
        for path in self.files:
            array = load_npy(path)
            check_array(path, 'array', array)
            shape = array.shape
            if len(shape) != 4 or shape[0] != 1 or tuple(shape[1:3]) != FRAME:
                raise shape_error(path, 'array', '(1, 384, 384, T)', shape)
            lengths.append(int(shape[3]))
        return lengths

    def __len__(self) -> int:
        return len(self.windows)

    def frames(self, index: int) -> np.ndarray:
        """``(T + T', 1, 384, 384)`` float32 in [0, 1]: the first ``T + T'`` frames of window ``index``."""
        event, start = self.windows[index]
        time = slice(start, start + self.total_frames)
        if self.format == 'earthformer':
            block = self._files.get(self.files[event])['vil'][self.indices[event], :, :, time]
        else:
            block = load_npy(self.files[event])[0, :, :, time]
        return block.transpose(2, 0, 1)[:, None].astype(np.float32) / np.float32(255.0)

    def sample_source(self, index: int) -> str:
        event, start = (int(v) for v in self.windows[index])
        frames = f'frames {name_range(start, self.total_frames)}'
        if self.format == 'earthformer':
            return f"{self.files[event]}, 'vil' row {self.indices[event]} (event {self.event_ids[event]}), {frames}"
        return f'{self.files[event]}, {frames}'
