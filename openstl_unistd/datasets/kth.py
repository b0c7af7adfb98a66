"""KTH human actions as OpenSTL reads them: one folder of jpg frames per video, split by person."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path
from .checks import read_image

SLOW_ACTIONS = ('boxing', 'handclapping', 'handwaving', 'walking')
"""Actions whose windows do not overlap: a new window every ``T + T'`` frames."""
FAST_ACTIONS = ('jogging', 'running')
"""Actions whose windows start every ``FAST_STRIDE`` frames."""
ACTIONS = SLOW_ACTIONS + FAST_ACTIONS
FAST_STRIDE = 3
TRAIN_PERSONS = tuple(range(1, 17))
TEST_PERSONS = tuple(range(17, 26))
IMAGE_SIZE = 128

VIDEO_NAME = re.compile(r'person(\d\d)_')
FRAME_NAME = re.compile(r'image_(\d+)\.jpg')


def kth_window_starts(numbers: Sequence[int], window: int, stride: int) -> list[int]:
    """First positions, ascending, of the windows OpenSTL cuts from one video's sorted frames.

    OpenSTL scans each video backwards from its last frame: a window of ``window`` frames whose
    frame numbers are consecutive is kept and the scan jumps back ``stride`` frames; a window
    spanning a gap in the numbering is skipped and the scan moves back one frame.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    starts = []
    end = len(numbers) - 1
    while end >= window - 1:
        if numbers[end] - numbers[end - window + 1] == window - 1:
            starts.append(end - window + 1)
            end -= stride
        else:
            end -= 1
    return starts[::-1]


def resize_bilinear(frames: np.ndarray, size: int) -> np.ndarray:
    """``(T, H, W)`` float32 → ``(T, size, size)`` by bilinear interpolation with half-pixel centres.

    Matches ``cv2.resize(frame, (size, size))`` (``INTER_LINEAR``, no antialiasing) on float
    input, which is how OpenSTL brings KTH's 160 × 120 frames to 128 × 128.
    """
    if frames.shape[1:] == (size, size):
        return frames
    resized = F.interpolate(torch.from_numpy(frames)[:, None], size=(size, size), mode='bilinear',
                            align_corners=False, antialias=False)
    return resized[:, 0].numpy()


class KTH(ForecastDataset):
    """KTH, 10 → 10 by default (OpenSTL's default is 10 → 20); frames ``(1, 128, 128)``, model range x / 255.

    Layout ``kth/<action>/personXX_<action>_dY_uncomp/image_NNNN.jpg`` for the six actions.
    Persons 01–16 are ``train``, 17–25 ``test``; OpenSTL has no validation split and ``val`` reads
    the test persons. Windows of ``T + T'`` consecutively numbered frames are cut from each video
    as OpenSTL does (:func:`kth_window_starts`): every ``T + T'`` frames for boxing, handclapping,
    handwaving and walking, every 3 frames for jogging and running, aligned on the last frame.
    Only the file list is read at construction: ``videos`` holds each video's folder and frame
    names, ``samples`` ``(K, 2)`` each window's video and first position; ``frames`` decodes one
    window. The grey value is the first channel of the jpg (as OpenSTL takes it), resized to
    128 × 128 when the jpg has another size (KTH's own frames are 160 × 120).
    """

    task = 'kth'
    prepare_script = 'download_kth.sh'
    frame_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    mean = 0.0
    std = 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 10, output_frames: int = 10) -> None:
        super().__init__(split, input_frames, output_frames)
        root = self.source = require_path(f'{data_root}/kth', self.task, self.prepare_script)
        persons = TRAIN_PERSONS if self.split == 'train' else TEST_PERSONS
        self.videos: list[tuple[Path, list[str]]] = []
        samples = []
        for action in ACTIONS:
            folder = require_path(root / action, self.task, self.prepare_script)
            stride = self.total_frames if action in SLOW_ACTIONS else FAST_STRIDE
            for video in sorted(entry.name for entry in os.scandir(folder) if entry.is_dir()):
                match = VIDEO_NAME.match(video)
                if match is None:
                    raise UserValueError(f'{folder / video}: unexpected folder name, expected '
                                         f'personXX_{action}_dY_uncomp with a two-digit person number')
                if int(match.group(1)) not in persons:
                    continue
                names, numbers = self._list_frames(folder / video)
                starts = kth_window_starts(numbers, self.total_frames, stride)
                samples.extend((len(self.videos), start) for start in starts)
                self.videos.append((folder / video, names))
        if not samples:
            raise UserValueError(f'kth: no window of {self.total_frames} consecutive frames of persons '
                                 f'{persons[0]:02d}–{persons[-1]:02d} under {root}')
        self.samples = np.asarray(samples, dtype=np.int64).reshape(-1, 2)

    @staticmethod
    def _list_frames(folder: Path) -> tuple[list[str], list[int]]:
        """Names and numbers of the ``image_NNNN.jpg`` frames of one video, by frame number."""
        frames = []
        for name in os.listdir(folder):
            if not name.startswith('image'):
                continue
            match = FRAME_NAME.fullmatch(name)
            if match is None:
                raise UserValueError(f'{folder / name}: unexpected frame name, expected image_NNNN.jpg')
            frames.append((int(match.group(1)), name))
        frames.sort()
        return [name for _, name in frames], [number for number, _ in frames]

    def __len__(self) -> int:
        return len(self.samples)

    def frame_paths(self, index: int) -> list[Path]:
        """The ``T + T'`` jpg files of sample ``index``, in time order."""
        video, start = self.samples[index]
        folder, names = self.videos[video]
        return [folder / name for name in names[start:start + self.total_frames]]

    def frames(self, index: int) -> np.ndarray:
        grey = []
        for path in self.frame_paths(index):
            pixels = read_image(path)
            grey.append(pixels[..., 0] if pixels.ndim == 3 else pixels)
        frames = resize_bilinear(np.stack(grey).astype(np.float32), IMAGE_SIZE)
        return (frames / self.std)[:, None]

    def sample_source(self, index: int) -> str:
        video, start = (int(v) for v in self.samples[index])
        folder, names = self.videos[video]
        return f'{folder}, frames {names[start]} … {names[start + self.total_frames - 1]}'
