"""Generated demo tasks that need no download: digits, a weather-like field, a traffic grid.

Each task generates its sequences once per (split, seed, count, length), deterministically,
stores them as a uint8 ``.npy`` under ``data_root/demo/`` (written atomically) and memory-maps it
afterwards. Values are in [0, 255] on disk, ``/255`` in model range. All three are learnable: the
future follows from the past (constant motion, advection with a constant wind, a daily cycle).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from .base import ForecastDataset, PathLike
from .checks import load_npy

SPLIT_INDEX = {'train': 0, 'val': 1, 'test': 2}


class GeneratedTask(ForecastDataset):
    """A generated task cached as ``data_root/demo/<task>_<split>_s<seed>_n<count>_t<frames>.npy``."""

    mean, std = 0.0, 255.0
    default_counts = {'train': 2000, 'val': 200, 'test': 200}
    chunk = 250
    default_frames: int

    def __init__(self, data_root: PathLike, split: str, input_frames: int, output_frames: int,
                 num_samples: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(split, input_frames, output_frames)
        count = num_samples or self.default_counts[split]
        length = max(self.total_frames, self.default_frames)
        name = f'{self.task}_{split}_s{seed}_n{count}_t{length}.npy'
        self.path = self.source = Path(data_root) / 'demo' / name
        if not self.path.exists():
            _save_atomically(self.path, self._generate_all(count, length, seed))
        self.sequences = load_npy(self.path)

    def _generate_all(self, count: int, frames: int, seed: int) -> np.ndarray:
        """All sequences as uint8, generated in chunks to bound memory."""
        out = np.empty((count, frames, *self.frame_shape), dtype=np.uint8)
        for chunk, first in enumerate(range(0, count, self.chunk)):
            rng = np.random.default_rng([seed, SPLIT_INDEX[self.split], sum(map(ord, self.task)), chunk])
            size = min(self.chunk, count - first)
            out[first:first + size] = np.rint(np.clip(self.generate(size, frames, rng), 0, 1) * 255)
        return out

    def generate(self, count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, frames, C, H, W)`` float32 sequences in [0, 1]."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.sequences)

    def frames(self, index: int) -> np.ndarray:
        return self.sequences[index, :self.total_frames].astype(np.float32) / 255.0

    def sample_source(self, index: int) -> str:
        return f'{self.path}, row {index}'


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file and rename, so concurrent readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(temporary, 'wb') as handle:
        np.save(handle, array)
    os.replace(temporary, path)


def _bounce(start: np.ndarray, velocity: np.ndarray, steps: np.ndarray, limit: float) -> np.ndarray:
    """Positions of points moving at constant velocity and reflecting off ``[0, limit]``."""
    free = start[:, None] + velocity[:, None] * steps[None, :]
    folded = np.mod(free, 2 * limit)
    return limit - np.abs(folded - limit)


class DemoDigits(GeneratedTask):
    """Two handwritten digits (scikit-learn's bundled 8×8 digits, upscaled ×2) bouncing in 32×32 at
    1–2 pixels a frame.

    Train draws from the first 1500 digit images, val/test from the remaining 297, so the digits
    seen at evaluation are new. 5 → 5 frames, 1 channel. (Moving MNIST's 64×64 and 10 → 10 cost 8×
    more per sample and are not learnt in a CPU demo's minutes; docs/method.md, "The demo".)
    """

    task = 'demo_digits'
    frame_shape = (1, 32, 32)
    default_frames = 10
    digit_size, canvas, digits = 16, 32, 2
    speeds = (1.0, 2.0)

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 5, output_frames: int = 5,
                 num_samples: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(data_root, split, input_frames, output_frames, num_samples, seed)

    def generate(self, count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        from sklearn.datasets import load_digits

        images = (load_digits().images / 16.0).astype(np.float32)
        pool = images[:1500] if self.split == 'train' else images[1500:]
        scale = self.digit_size // 8
        glyphs = np.kron(pool, np.ones((scale, scale)))
        limit = self.canvas - self.digit_size
        steps = np.arange(frames)
        video = np.zeros((count, frames, self.canvas, self.canvas), dtype=np.float32)
        rows = np.arange(self.digit_size)
        samples = np.arange(count)[:, None, None]
        for _ in range(self.digits):
            glyph = glyphs[rng.integers(len(glyphs), size=count)]
            angle = rng.uniform(0, 2 * np.pi, count)
            speed = rng.uniform(*self.speeds, count)
            top = np.rint(_bounce(rng.uniform(0, limit, count), speed * np.sin(angle), steps, limit)).astype(int)
            left = np.rint(_bounce(rng.uniform(0, limit, count), speed * np.cos(angle), steps, limit)).astype(int)
            for t in range(frames):
                r = top[:, t, None, None] + rows[None, :, None]
                c = left[:, t, None, None] + rows[None, None, :]
                video[samples, t, r, c] = np.maximum(video[samples, t, r, c], glyph)
        return video[:, :, None]


class DemoAdvection(GeneratedTask):
    """A smooth random field carried by a constant wind and diffusing, on a periodic 32×32 grid.

    Solved exactly in Fourier space: ``ĉ(k, t) = ĉ(k, 0)·exp(−i k·u t − D |k|² t)``; each sequence
    has its own wind ``u`` and is rescaled to [0, 1]. 12 → 12 frames, 1 channel (weather-like).
    """

    task = 'demo_advection'
    frame_shape = (1, 32, 32)
    default_frames = 24
    size, diffusivity = 32, 0.02

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 12, output_frames: int = 12,
                 num_samples: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(data_root, split, input_frames, output_frames, num_samples, seed)

    def generate(self, count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        k = 2 * np.pi * np.fft.fftfreq(n)
        ky, kx = np.meshgrid(k, k, indexing='ij')
        k2 = kx ** 2 + ky ** 2
        noise = rng.standard_normal((count, n, n), dtype=np.float32)
        spectrum = (np.fft.fft2(noise) * np.exp(-k2 * 10.0)).astype(np.complex64)
        wind = rng.uniform(-1.5, 1.5, (count, 2))
        t = np.arange(frames)[None, :, None, None]
        phase = (wind[:, 0, None, None, None] * ky + wind[:, 1, None, None, None] * kx) * t
        evolution = np.exp(-1j * phase - self.diffusivity * k2 * t).astype(np.complex64)
        fields = np.fft.ifft2(spectrum[:, None] * evolution).real.astype(np.float32)
        low = fields.min(axis=(1, 2, 3), keepdims=True)
        high = fields.max(axis=(1, 2, 3), keepdims=True)
        return ((fields - low) / (high - low))[:, :, None]


class DemoTraffic(GeneratedTask):
    """Inflow/outflow on a 32×32 city grid with a daily cycle (48 frames a day) and noise.

    Each city has its own hot spots and phase map; outflow lags inflow. A sample is 8 consecutive
    frames starting at a random time of day. 4 → 4 frames, 2 channels (TaxiBJ-like).
    """

    task = 'demo_traffic'
    frame_shape = (2, 32, 32)
    default_frames = 8
    size, period = 32, 48

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 4, output_frames: int = 4,
                 num_samples: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(data_root, split, input_frames, output_frames, num_samples, seed)

    def generate(self, count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        y, x = np.mgrid[0:n, 0:n] / n
        centres = rng.uniform(0, 1, (count, 4, 2))
        widths = rng.uniform(0.05, 0.2, (count, 4))
        heights = rng.uniform(0.3, 1.0, (count, 4))
        distance = (y[None, None] - centres[..., 0, None, None]) ** 2 + (x[None, None] - centres[..., 1, None, None]) ** 2
        base = (heights[..., None, None] * np.exp(-distance / widths[..., None, None] ** 2)).sum(axis=1)
        phase = 2 * np.pi * (rng.uniform(0, 0.2, (count, 1, 1)) + 0.3 * y + 0.2 * x)
        start = rng.integers(0, self.period, count)
        t = (start[:, None] + np.arange(frames)[None, :])[..., None, None]
        angle = 2 * np.pi * t / self.period - phase[:, None]
        inflow = base[:, None] * (1 + 0.8 * np.sin(angle))
        outflow = base[:, None] * (1 + 0.8 * np.sin(angle - 2 * np.pi * 3 / self.period))
        flows = np.stack([inflow, outflow], axis=2) + rng.normal(0, 0.02, (count, frames, 2, n, n))
        return flows / flows.max(axis=(1, 2, 3, 4), keepdims=True).clip(min=1e-6)


class DemoWave(GeneratedTask):
    """A damped wave on a periodic 32×32 membrane: a signed, zero-centred field that oscillates.

    Solved exactly in Fourier space from a smooth random displacement at rest:
    ``û(k, t) = û(k, 0)·e^{−γt/2}·(cos ωt + γ/(2ω)·sin ωt)``, ``ω = sqrt(c²|k|² − γ²/4)``; each
    sequence has its own wave speed and is scaled by its largest |u| to [−1, 1]. Stored as
    ``(u + 1) / 2`` (model range [0, 1], the field's zero at 0.5); ``mean, std = −1, 2`` map it back
    to u. Copying the last frame is poor here: the field changes sign within a few frames. 4 → 12
    (``T' ≠ T``: one pass to 12 frames and a rolled-out 4 → 4 model differ here).
    """

    task = 'demo_wave'
    frame_shape = (1, 32, 32)
    default_frames = 16
    mean, std = -1.0, 2.0
    size, damping = 32, 0.05

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 4, output_frames: int = 12,
                 num_samples: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(data_root, split, input_frames, output_frames, num_samples, seed)

    def generate(self, count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        k = 2 * np.pi * np.fft.fftfreq(n)
        ky, kx = np.meshgrid(k, k, indexing='ij')
        k2 = kx ** 2 + ky ** 2
        noise = rng.standard_normal((count, n, n))
        spectrum = np.fft.fft2(noise) * np.exp(-k2 * 6.0)
        spectrum[:, 0, 0] = 0.0
        speed = rng.uniform(1.0, 2.0, (count, 1, 1, 1))
        t = np.arange(frames)[None, :, None, None]
        gamma = self.damping
        omega = np.sqrt(np.maximum(speed ** 2 * k2 - gamma ** 2 / 4, 1e-12))
        evolution = np.exp(-gamma * t / 2) * (np.cos(omega * t) + gamma / (2 * omega) * np.sin(omega * t))
        fields = np.fft.ifft2(spectrum[:, None] * evolution).real
        fields /= np.abs(fields).max(axis=(1, 2, 3), keepdims=True).clip(min=1e-12)
        return ((fields + 1) / 2).astype(np.float32)[:, :, None]
