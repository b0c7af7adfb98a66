"""BAIR robot pushing (softmotion30_44k, 30-frame episodes of 64 × 64 RGB), OpenSTL or PredBench layout."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import UserValueError
from .base import ForecastDataset, PathLike, prepare_hint, require_path, shape_error
from .checks import UnreadableFileError, check_array
from .lazy_files import PerProcessFiles, open_binary, open_npy
from .windows import window_starts

IMAGE_KEY = '{}/image_aux1/encoded'
"""Feature of frame ``j``: the raw 64 × 64 × 3 uint8 bytes of the aux1 camera, as OpenSTL reads."""
IMAGE_BYTES = 64 * 64 * 3


def record_offsets(path: Path) -> list[int]:
    """Byte offset of every record in a TFRecord file, found by hopping over the length headers.

    A record is ``length (uint64 LE) | crc (4) | data (length) | crc (4)``; only the 8-byte
    headers are read, so indexing a split does not read its images.
    """
    offsets, position, size = [], 0, path.stat().st_size
    with open(path, 'rb') as handle:
        while position < size:
            header = handle.read(8)
            if len(header) != 8:
                raise UserValueError(f'{path}: truncated record header at byte {position}')
            (length,) = struct.unpack('<Q', header)
            offsets.append(position)
            position += 16 + length
            if position > size:
                raise UserValueError(f'{path}: record {len(offsets) - 1} at byte {offsets[-1]} needs '
                                     f'{16 + length} bytes but the file ends at byte {size}')
            handle.seek(position)
    return offsets


def read_example(handle, offset: int):
    """The ``tf.train.Example`` (parsed by the ``tfrecord`` package) of the record at ``offset``."""
    from google.protobuf.message import DecodeError
    from tfrecord import example_pb2

    handle.seek(offset)
    (length,) = struct.unpack('<Q', handle.read(12)[:8])
    try:
        return example_pb2.Example.FromString(handle.read(length))
    except DecodeError as error:
        raise UnreadableFileError(f'{handle.name}: the record at byte {offset} is not a tf.train.Example ({error}); '
                                  'the file may be corrupt or not a BAIR TFRecord') from error


def frame_from_feature(feature, key: str, where: str, hint: str = '') -> np.ndarray:
    """``(64, 64, 3)`` uint8 frame of ``key`` in a record's feature map; ``where`` names the record."""
    if key not in feature:
        raise UserValueError(f'{where} has no feature {key!r}{hint}')
    values = feature[key].bytes_list.value
    if len(values) != 1 or len(values[0]) != IMAGE_BYTES:
        raise UserValueError(f'{where}: {key!r} holds {[len(v) for v in values]} bytes, '
                             f'expected [{IMAGE_BYTES}] (raw 64 × 64 × 3 uint8)')
    return np.frombuffer(values[0], dtype=np.uint8).reshape(64, 64, 3)


class BAIR(ForecastDataset):
    """BAIR, 2 → 10 by default; samples ``(T + T', 3, 64, 64)`` in [0, 1] (uint8 / 255).

    ``format='tfrecord'`` (OpenSTL): ``softmotion30_44k/{train,test}/*.tfrecords``, one episode per
    record, frame ``j`` in feature ``'{j}/image_aux1/encoded'``. There is no validation split:
    ``val`` reads ``test``, as OpenSTL does. Records are indexed by byte offset at construction
    and read one per sample; the frame count of every episode is taken from the first record
    (30 in softmotion30_44k) and checked when a sample is read.
    ``format='npy'`` (PredBench): ``bair/{train,val,test}.npy`` of shape ``(N, T, 64, 64, 3)``,
    memory-mapped.

    ``clips='all'`` makes every window of ``T + T'`` consecutive frames of every episode a sample
    (stride 1; OpenSTL, in every split). ``clips='one'`` makes each episode one sample, as
    PredBench's ``SampleFrames`` does: a random start in ``train`` (drawn with torch's generator,
    so each DataLoader worker draws its own), the middle start ``(n − T − T' + 1) // 2`` otherwise.
    The default follows the layout's project: ``'all'`` for tfrecord, ``'one'`` for npy.
    The paper's Table 1 counts (38937 / 256) are PredBench's: one clip per episode, PredBench's
    train.npy apparently holding 90 % of the 43264 training episodes (val.npy the rest).
    """

    task = 'bair'
    prepare_script = 'download_bair.sh'
    frame_shape = (3, 64, 64)
    mean, std = 0.0, 255.0

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 2, output_frames: int = 10,
                 format: str = 'tfrecord', clips: Optional[str] = None) -> None:
        super().__init__(split, input_frames, output_frames)
        if format == 'tfrecord':
            lengths = self._index_tfrecords(Path(data_root))
        elif format == 'npy':
            lengths = self._index_npy(Path(data_root))
        else:
            raise UserValueError(f"bair: unknown format {format!r}; expected 'tfrecord' or 'npy'")
        self.format = format
        self.clips = clips or ('all' if format == 'tfrecord' else 'one')
        if self.clips not in ('all', 'one'):
            raise UserValueError(f"bair: unknown clips {clips!r}; expected 'all' or 'one'")
        self.check_sequence_length(int(lengths.max(initial=0)), self.source)
        self.lengths = lengths
        if self.clips == 'all':
            self.windows = window_starts(lengths, self.total_frames, 1)
        else:
            self.windows = np.stack([np.arange(len(lengths)), (lengths - self.total_frames + 1) // 2], axis=1)

    def _index_tfrecords(self, data_root: Path) -> np.ndarray:
        part = 'train' if self.split == 'train' else 'test'
        folder = require_path(data_root / 'softmotion30_44k' / part, self.task, self.prepare_script)
        self.files = [str(path) for path in sorted(folder.glob('*.tfrecords'))]
        if not self.files:
            raise FileNotFoundError(f'{self.task}: no *.tfrecords files in {folder}; {prepare_hint(self.prepare_script)}')
        self.records = np.array([(i, offset) for i, path in enumerate(self.files)
                                 for offset in record_offsets(Path(path))], dtype=np.int64).reshape(-1, 2)
        self.source = folder
        self._files = PerProcessFiles(open_binary)
        if len(self.records) == 0:
            return np.zeros(0, dtype=np.int64)
        with open(self.files[0], 'rb') as handle:
            feature = read_example(handle, 0).features.feature
        frame_from_feature(feature, IMAGE_KEY.format(0), f'{self.files[0]}: record 0')
        frames = 1
        while IMAGE_KEY.format(frames) in feature:
            frames += 1
        return np.full(len(self.records), frames, dtype=np.int64)

    def _index_npy(self, data_root: Path) -> np.ndarray:
        path = require_path(data_root / 'bair' / f'{self.split}.npy', self.task, self.prepare_script)
        array = open_npy(str(path))
        if array.ndim != 5 or array.shape[2:] != (64, 64, 3):
            raise shape_error(path, 'array', '(N, T, 64, 64, 3)', array.shape)
        if array.dtype.kind not in 'uif':
            raise UserValueError(f"{path}: 'array' has dtype {array.dtype}, expected uint8 values in [0, 255]")
        check_array(path, 'array', array)
        self.source = path
        self._files = PerProcessFiles(open_npy)
        return np.full(array.shape[0], array.shape[1], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def window(self, index: int) -> tuple[int, int]:
        """``(episode, first frame)`` of sample ``index`` (a fresh random start for ``clips='one'`` in train)."""
        episode, start = (int(v) for v in self.windows[index])
        if self.clips == 'one' and self.split == 'train':
            start = int(torch.randint(int(self.lengths[episode]) - self.total_frames + 1, ()).item())
        return episode, start

    def frames(self, index: int) -> np.ndarray:
        episode, start = self.window(index)
        stop = start + self.total_frames
        if self.format == 'npy':
            clip = np.asarray(self._files.get(str(self.source))[episode, start:stop])
        else:
            clip = self._read_record_frames(episode, start, stop)
        return clip.transpose(0, 3, 1, 2).astype(np.float32) / 255.0

    def _read_record_frames(self, episode: int, start: int, stop: int) -> np.ndarray:
        """``(stop − start, 64, 64, 3)`` uint8 frames of record ``episode``."""
        file_index, offset = (int(v) for v in self.records[episode])
        path = self.files[file_index]
        feature = read_example(self._files.get(path), offset).features.feature
        where = f'{path}: record at byte {offset}'
        hint = f'; every episode must hold {self.lengths[episode]} frames, as the first record does'
        return np.stack([frame_from_feature(feature, IMAGE_KEY.format(j), where, hint) for j in range(start, stop)])

    def sample_source(self, index: int) -> str:
        episode = int(self.windows[index][0])
        if self.format == 'npy':
            return f'{self.source}, episode {episode}'
        file_index, offset = (int(v) for v in self.records[episode])
        return f'{self.files[file_index]}, record at byte {offset}'
