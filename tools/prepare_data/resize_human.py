"""Resize Human3.6M's full-size frames to 256 × 256 jpgs once, as OpenSTL's prepare step does.

OpenSTL (tools/prepare_data/resize_image.py) resizes every frame with ``cv2.resize`` at its default,
bilinear interpolation without antialiasing, and saves it with OpenCV's default JPEG quality 95; a
frame smaller than the target is copied. This does the same with torch and Pillow (values within
one grey level of OpenCV's). Every ``*.jpg`` under SOURCE, at any depth, becomes ``DEST/<name>``:
the flat folder that ``human/{train,test}.txt`` name. Frames already in DEST are skipped.

Usage: python tools/prepare_data/resize_human.py SOURCE DEST [--size 256] [--workers N]
"""
from __future__ import annotations

import argparse
import os
import shutil
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def resize_frame(source: Path, destination: Path, size: int) -> None:
    """Write ``source`` resized to ``size × size`` (or copied when smaller) to ``destination``."""
    with Image.open(source) as image:
        pixels = np.array(image.convert('RGB'))
    if max(pixels.shape[:2]) < size:
        shutil.copyfile(source, destination)
        return
    values = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    resized = F.interpolate(values, size=(size, size), mode='bilinear', align_corners=False, antialias=False)
    out = resized[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(out).save(destination, quality=95)


def _work(source: Path, dest: Path, size: int) -> None:
    target = dest / source.name
    if not target.exists():
        resize_frame(source, target, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', type=Path, help='folder of full-size frames (searched recursively)')
    parser.add_argument('dest', type=Path, help='flat folder of resized frames, e.g. data/human/images')
    parser.add_argument('--size', type=int, default=256, help='side of the square output frames')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    frames = sorted(args.source.rglob('*.jpg'))
    print(f'{len(frames)} frames under {args.source} → {args.dest}')
    torch.set_num_threads(1)
    with Pool(args.workers) as pool:
        for _ in pool.imap_unordered(partial(_work, dest=args.dest, size=args.size), frames, chunksize=64):
            pass


if __name__ == '__main__':
    main()
