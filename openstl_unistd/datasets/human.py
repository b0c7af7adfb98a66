"""Human3.6M as OpenSTL reads it: jpg frames listed by ``human/{train,test}.txt``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path
from .checks import UnreadableFileError, read_image

IMAGE_SIZE = 256


def resize_bicubic(frames: np.ndarray, size: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 → ``(T, size, size, 3)`` uint8, bicubic with half-pixel centres.

    Matches ``cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)`` (a = −0.75, no
    antialiasing, rounded and saturated to uint8) to within one grey level, which is how OpenSTL
    resizes a Human3.6M jpg that is not 256 × 256 (OpenSTL checks the height only).
    """
    if frames.shape[1:3] == (size, size):
        return frames
    values = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    resized = F.interpolate(values, size=(size, size), mode='bicubic', align_corners=False, antialias=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class Human36M(ForecastDataset):
    """Human3.6M, 4 → 4 by default; frames ``(3, 256, 256)`` RGB, model range ``x / 255``.

    ``human/train.txt`` (``train``) and ``human/test.txt`` (``val`` and ``test``: OpenSTL validates
    on the test list) hold one sample per line, ``<prefix>,<start>,<end>`` such as
    ``images/S1_Directions.54138969_,176,246``. Sample frames are ``human/<prefix>%06d.jpg`` for
    ``start, start + step, …`` (``T + T'`` of them, ``step`` 5 as in OpenSTL); ``end`` is parsed but,
    as in OpenSTL, not used. Only the list is read at construction; ``frames`` decodes one sample.
    Channels are RGB as the jpg stores them (OpenSTL decodes with OpenCV and feeds BGR; MSE, MAE,
    PSNR and SSIM do not depend on the channel order). Train-time augmentation (OpenSTL's random
    crop and rotation) is not applied here.
    """

    task = 'human'
    prepare_script = 'download_human.sh'
    frame_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    mean = 0.0
    std = 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 4, output_frames: int = 4,
                 step: int = 5) -> None:
        super().__init__(split, input_frames, output_frames)
        if step < 1:
            raise UserValueError(f'human: step must be ≥ 1, got {step}')
        self.step = step
        self.root = require_path(f'{data_root}/human', self.task, self.prepare_script)
        listing = require_path(self.root / ('train.txt' if self.split == 'train' else 'test.txt'),
                               self.task, self.prepare_script)
        self.prefixes, self.starts = self._read_list(listing)
        self.source = listing
        require_path(self.frame_paths(0)[0], self.task, self.prepare_script)

    @staticmethod
    def _read_list(path: Path) -> tuple[list[str], np.ndarray]:
        """Prefixes and start frames of the lines of a sample list; blank lines are skipped."""
        prefixes, starts = [], []
        try:
            text = path.read_text()
        except UnicodeDecodeError as error:
            raise UnreadableFileError(f'{path}: not a text file of sample lines ({error})') from error
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split(',')]
            if len(fields) != 3 or not fields[0] or not all(f.isdigit() for f in fields[1:]):
                raise UserValueError(f'{path}: line {number} is {line!r}, expected '
                                     "'<image prefix>,<start>,<end>' with non-negative integers start and end")
            prefixes.append(fields[0])
            starts.append(int(fields[1]))
        if not prefixes:
            raise UserValueError(f'{path}: no samples, expected lines \'<image prefix>,<start>,<end>\'')
        return prefixes, np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.prefixes)

    def frame_paths(self, index: int) -> list[Path]:
        """The ``T + T'`` jpg files of sample ``index``, in time order."""
        prefix, start = self.prefixes[index], int(self.starts[index])
        return [self.root / f'{prefix}{start + k * self.step:06d}.jpg' for k in range(self.total_frames)]

    def frames(self, index: int) -> np.ndarray:
        images = [read_image(require_path(path, self.task, self.prepare_script), 'RGB')
                  for path in self.frame_paths(index)]
        frames = resize_bicubic(np.stack(images), IMAGE_SIZE)
        return frames.transpose(0, 3, 1, 2).astype(np.float32) / self.std

    def sample_source(self, index: int) -> str:
        paths = self.frame_paths(index)
        return f'{paths[0]} … {paths[-1].name} (listed in {self.source})'
