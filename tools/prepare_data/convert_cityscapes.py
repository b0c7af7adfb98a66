"""Convert Cityscapes ``leftImg8bit_sequence`` PNGs into PredBench's ``Cityscapes128_h5`` layout.

    python tools/prepare_data/convert_cityscapes.py --sequence-dir RAW/leftImg8bit_sequence \\
        --out data/cityscapes/Cityscapes128_h5

For each split, every snippet ``<city>_<seq>_*_leftImg8bit.png`` (30 frames) becomes one video of
``<out>/<split>/shard_0001.hdf5``: frames centre-cropped to a square, resized to ``--size`` with
Lanczos, stored as uint8 RGB, as MCVD's ``cityscapes_convert.py`` (which PredBench's files come
from) does. Snippets are numbered in sorted file-name order. Frames are processed in a worker
pool and written one video at a time, so memory stays at one batch of videos.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import groupby
from pathlib import Path

import numpy as np
from PIL import Image

from openstl_unistd.datasets.fixtures.cityscapes import append_video, open_shard
from openstl_unistd.engine.cli import run_tool
from openstl_unistd.errors import UserValueError

SPLITS = ('train', 'val', 'test')


def snippet_of(path: Path) -> str:
    """``<city>_<sequence>`` of a frame named ``<city>_<sequence>_<frame>_leftImg8bit.png``."""
    return '_'.join(path.name.split('_')[:2])


def load_frame(path: Path, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: the centred square of the frame, resized with Lanczos."""
    image = Image.open(path).convert('RGB')
    width, height = image.size
    side = min(width, height)
    left, top = width // 2 - side // 2, height // 2 - side // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.LANCZOS), dtype=np.uint8)


def load_video(paths: list[Path], size: int) -> np.ndarray:
    return np.stack([load_frame(path, size) for path in paths])


def convert_split(source: Path, target: Path, size: int, workers: int) -> int:
    """Write ``target/shard_0001.hdf5`` from the PNGs under ``source/<city>/``; returns the video count."""
    frames = sorted(source.glob('*/*.png'), key=lambda path: path.name)
    if not frames:
        raise FileNotFoundError(f'no PNG frames under {source}/<city>/')
    videos = [list(group) for _, group in groupby(frames, key=snippet_of)]
    target.mkdir(parents=True, exist_ok=True)
    shard = target / 'shard_0001.hdf5'
    if shard.exists():
        raise UserValueError(f'{shard} already exists; remove it to convert again')
    with open_shard(shard) as handle, ProcessPoolExecutor(workers) as pool:
        for index, video in enumerate(pool.map(partial(load_video, size=size), videos, chunksize=4)):
            append_video(handle, index, video)
            if index % 100 == 0:
                print(f'{target.name}: {index + 1}/{len(videos)} videos', flush=True)
    return len(videos)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sequence-dir', required=True, type=Path,
                        help='the unzipped leftImg8bit_sequence folder (holds train/, val/, test/)')
    parser.add_argument('--out', required=True, type=Path, help='the Cityscapes128_h5 folder to create')
    parser.add_argument('--size', type=int, default=128, help='frame side in pixels')
    parser.add_argument('--workers', type=int, default=8, help='processes decoding and resizing frames')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS), choices=SPLITS)
    args = parser.parse_args(argv)
    for split in args.splits:
        count = convert_split(args.sequence_dir / split, args.out / split, args.size, args.workers)
        print(f'{split}: {count} videos written to {args.out / split}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
