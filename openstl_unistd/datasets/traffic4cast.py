"""Traffic4Cast 2021 traffic movies (8 channels, 5-minute frames), read from the per-day HDF5 files.

Layout (PredBench's ``data/`` folder as ``data_root``)::

    Traffic4Cast2021/<CITY>/training/<date>_<CITY>_8ch.h5      dataset 'array', (288, 495, 436, 8) uint8
    annotations/traffic4cast2021/traffic4cast2021_train.json   list of day files relative to Traffic4Cast2021/
    annotations/traffic4cast2021/traffic4cast2021_val.json
    annotations/traffic4cast2021/traiifc4cast2021_test.json    (sic: PredBench's file name)

The three lists are PredBench's split (1280 / 160 / 161 days of ANTWERP, BANGKOK, BARCELONA, BERLIN,
CHICAGO, ISTANBUL and MELBOURNE; 28 windows a day give the paper's 35840 train / 4508 test samples).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import UnreadableFileError, check_array, name_range, open_hdf5
from .lazy_files import PerProcessFiles, open_h5
from .windows import window_starts

RAW_FRAME = (495, 436, 8)
"""``(H, W, C)`` of one frame in the files."""
CROP = (128, 112)
"""``(H, W)`` of PredBench's centre crop (``CenterCrop(crop_size=(112, 128))``)."""
ANNOTATIONS = {
    'train': 'traffic4cast2021_train.json',
    'val': 'traffic4cast2021_val.json',
    'test': 'traiifc4cast2021_test.json',
}
"""PredBench's split list of each split, in ``annotations/traffic4cast2021/``."""


def centre_crop_origin(height: int, width: int, crop: tuple[int, int] = CROP) -> tuple[int, int]:
    """``(top, left)`` of the centre crop, rounded down as mmaction's ``CenterCrop`` does: (183, 162)."""
    return (height - crop[0]) // 2, (width - crop[1]) // 2


class Traffic4Cast(ForecastDataset):
    """Traffic4Cast 2021, 9 → 3 by default: windows of ``T + T'`` consecutive frames of one day.

    Windows start every ``stride`` frames at ``0, stride, …`` while ``start < frames - (T + T')``:
    PredBench's ``range(0, 288 - clip_len, stride)``, whose bound is exclusive (28 windows a day for
    12 frames and stride 10). Only the window's frames and the centre 128 × 112 crop are read from
    the file (h5py slicing, one handle per process). Model range ``x / 255``.

    ``skip_missing=True`` drops listed days whose file is absent (PredBench's behaviour); by default
    a missing day is an error, so that sample counts never change silently.
    """

    task = 'traffic4cast'
    prepare_script = 'download_traffic4cast.sh'
    frame_shape = (8, 128, 112)
    mean = 0.0
    std = 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 9, output_frames: int = 3,
                 stride: int = 10, skip_missing: bool = False) -> None:
        super().__init__(split, input_frames, output_frames)
        root = Path(data_root)
        list_file = require_path(root / 'annotations' / 'traffic4cast2021' / ANNOTATIONS[self.split],
                                 self.task, self.prepare_script)
        days = self._read_list(list_file)
        self.source = list_file
        folder = require_path(root / 'Traffic4Cast2021', self.task, self.prepare_script)
        paths, lengths = [], []
        for day in days:
            path = folder / day
            if skip_missing and not path.is_file():
                continue
            paths.append(str(require_path(path, self.task, self.prepare_script)))
            lengths.append(self._day_length(path))
        self.paths = paths
        self.top, self.left = centre_crop_origin(RAW_FRAME[0], RAW_FRAME[1])
        # PredBench's bound is exclusive: starts < length - window, i.e. windows of a day one frame shorter.
        self.windows = window_starts(np.asarray(lengths, dtype=np.int64) - 1, self.total_frames, stride)
        self._files = PerProcessFiles(open_h5)

    @staticmethod
    def _read_list(list_file: Path) -> list[str]:
        try:
            with open(list_file) as f:
                days = json.load(f)
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            raise UnreadableFileError(f'{list_file}: not a readable JSON list of day files ({error})') from error
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise UserValueError(f'{list_file}: expected a JSON list of day files such as '
                                 f'"BERLIN/training/2019-05-16_BERLIN_8ch.h5", got {type(days).__name__}')
        return days

    @staticmethod
    def _day_length(path: Path) -> int:
        """Frames of one day file, after checking its key, dtype and frame shape (reads the header only)."""
        with open_hdf5(path) as f:
            if 'array' not in f:
                raise UserValueError(f"{path}: key 'array' is missing; found {sorted(f.keys())}")
            check_array(path, 'array', f['array'])
            shape = f['array'].shape
        if len(shape) != 4 or tuple(shape[1:]) != RAW_FRAME:
            raise shape_error(path, 'array', '(T, 495, 436, 8)', shape)
        return int(shape[0])

    def __len__(self) -> int:
        return len(self.windows)

    def frames(self, index: int) -> np.ndarray:
        """``(T + T', 8, 128, 112)`` float32 in [0, 1]: the window's frames, centre-cropped."""
        day, start = self.windows[index]
        array = self._files.get(self.paths[day])['array']
        block = array[start:start + self.total_frames,
                      self.top:self.top + CROP[0], self.left:self.left + CROP[1], :]
        return block.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)

    def sample_source(self, index: int) -> str:
        day, start = self.windows[index]
        return f"{self.paths[day]}, 'array' frames {name_range(int(start), self.total_frames)}"
