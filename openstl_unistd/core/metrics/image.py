"""Per-frame image metrics in torch, batched (OpenSTL's definitions; SSIM as scikit-image's).

Inputs are frames ``(N, C, H, W)``; each function returns one value per frame ``(N,)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import UserValueError

MIN_MSE = 1e-10
"""Squared-error floor of PSNR and SNR: a perfect frame scores 100 dB instead of infinity."""


def frame_squared_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Σ over C, H, W of the squared error (OpenSTL's per-frame MSE)."""
    return (pred - true).square().flatten(1).sum(dim=1)


def frame_absolute_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Σ over C, H, W of the absolute error (OpenSTL's per-frame MAE)."""
    return (pred - true).abs().flatten(1).sum(dim=1)


def psnr(pred: torch.Tensor, true: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """``20·log10(data_range / sqrt(mean squared error))`` per frame."""
    mse = (pred - true).square().flatten(1).mean(dim=1).clamp(min=MIN_MSE)
    return 20.0 * torch.log10(torch.as_tensor(data_range, dtype=mse.dtype, device=mse.device)) - 10.0 * torch.log10(mse)


def snr(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``10·log10(mean(true²) / mean((true − pred)²))`` per frame."""
    signal = true.square().flatten(1).mean(dim=1).clamp(min=MIN_MSE)
    noise = (true - pred).square().flatten(1).mean(dim=1).clamp(min=MIN_MSE)
    return 10.0 * torch.log10(signal / noise)


def ssim(pred: torch.Tensor, true: torch.Tensor, data_range: float, win_size: int = 7) -> torch.Tensor:
    """Mean SSIM per frame, equal to ``skimage.metrics.structural_similarity`` with its defaults.

    Those defaults: a uniform ``win_size × win_size`` window, sample covariances, ``K1 = 0.01``,
    ``K2 = 0.03``, the map averaged over the positions where the window fits, channels averaged.
    """
    if min(pred.shape[-2:]) < win_size:
        raise UserValueError(f'SSIM needs frames of at least {win_size}×{win_size}, got {tuple(pred.shape[-2:])}')
    x, y = pred, true
    channels = x.shape[1]
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    means = F.avg_pool2d(stacked, win_size, stride=1)
    ux, uy, uxx, uyy, uxy = means.split(channels, dim=1)
    correction = win_size ** 2 / (win_size ** 2 - 1)
    vx = correction * (uxx - ux * ux)
    vy = correction * (uyy - uy * uy)
    vxy = correction * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)
