"""One task's metrics, accumulated batch by batch over a whole test set (sums only, DDP-reduced).

Conventions (docs/metrics.md):
- MSE, MAE (per-frame sums over C, H, W, averaged over samples and frames), RMSE (sqrt of that
  MSE), PSNR, SSIM and SNR use model-range values, where OpenSTL (its image datasets have
  mean 0, std 1) and Earthformer (normalized SST, VIL / 255) compute them, so results compare
  with their tables. PSNR, SSIM and SNR clip predictions to [0, 1] first, as OpenSTL does.
- CSI and the Nino3.4 scores need physical values: predictions and targets are de-normalized
  with the dataset's :class:`~openstl_unistd.core.scaling.Scaling` (``physical = model · std + mean``).
- Fields (a user's own data, ``data_range`` given): MSE, MAE and RMSE in physical units (per-frame
  sums as above), PSNR, SSIM and SNR in model units with ``data_range`` (the test targets' range)
  and no clipping: a signed or standardized field is not an image in [0, 1].
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torchmetrics import Metric

from ...errors import UserValueError
from ..scaling import Scaling
from . import image, weather

KNOWN_METRICS = ('mse', 'mae', 'rmse', 'psnr', 'ssim', 'snr', 'csi', 'nino')


class ForecastMetrics(Metric):
    """Streaming metrics of one task. ``update(pred, true)`` takes model-range ``(B, T', C, H, W)``.

    Args:
        metrics: names among :data:`KNOWN_METRICS` (``csi`` gives ``csi_<threshold>`` and ``csi_m``;
            ``nino`` gives ``c_nino34_m``, ``c_nino34_wm`` and ``nino_rmse``).
        scaling: the dataset's map to physical values (its loader's ``scaling``; identity by default).
        ssim_data_range: ``data_range`` of SSIM on [0, 1] frames (1.0; OpenSTL's legacy call to
            scikit-image < 0.20 passed none and so used 2.0, the float default of that time).
        csi_thresholds: VIL thresholds (physical units).
        output_frames: T' (needed by ``nino``: its T' − 2 leads).
        data_range: the field convention (above) with this PSNR/SSIM data range; ``None``: images.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, metrics: Sequence[str], scaling: Scaling = Scaling(), ssim_data_range: float = 1.0,
                 csi_thresholds: Sequence[float] = weather.SEVIR_THRESHOLDS, output_frames: int | None = None,
                 data_range: float | None = None) -> None:
        super().__init__()
        unknown = sorted(set(metrics) - set(KNOWN_METRICS))
        if unknown:
            raise UserValueError(f'unknown metric(s) {unknown}; known: {list(KNOWN_METRICS)}')
        self.metrics = tuple(metrics)
        if not isinstance(scaling, Scaling):
            raise TypeError(f'scaling must be a Scaling, got {type(scaling).__name__}')
        self.scaling = scaling
        mean, std = (torch.tensor(values, dtype=torch.float32).view(-1, 1, 1) for values in (scaling.mean, scaling.std))
        self.register_buffer('scale_mean', mean, persistent=False)   # moved with the metric: no copy per update
        self.register_buffer('scale_std', std, persistent=False)
        self.data_range = None if data_range is None else float(data_range)
        self.ssim_data_range = float(ssim_data_range)
        self.csi_thresholds = tuple(csi_thresholds)
        for name in ('frames', 'squared_error', 'absolute_error', 'psnr', 'ssim', 'snr'):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx='sum')
        self.add_state('contingency', default=torch.zeros(len(self.csi_thresholds), 3, dtype=torch.float64),
                       dist_reduce_fx='sum')
        if 'nino' in self.metrics:
            if output_frames is None or output_frames <= weather.NINO_WINDOW:
                raise UserValueError(f'the nino metric needs output_frames > {weather.NINO_WINDOW}, got {output_frames}')
            leads = output_frames - weather.NINO_WINDOW + 1
            self.add_state('nino_sums', default=torch.zeros(6, leads, dtype=torch.float64), dist_reduce_fx='sum')

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        if pred.shape != true.shape or pred.dim() != 5:
            raise ValueError(f'pred and true must both be (B, T, C, H, W); got {tuple(pred.shape)} and {tuple(true.shape)}')
        pred, true = pred.detach().float(), true.detach().float()
        frames_pred, frames_true = pred.flatten(0, 1), true.flatten(0, 1)
        self.frames += frames_pred.shape[0]
        errors_pred, errors_true = frames_pred, frames_true
        if self.data_range is not None:  # a field: errors in physical units
            errors_pred, errors_true = self.physical(frames_pred), self.physical(frames_true)
        self.squared_error += image.frame_squared_error(errors_pred, errors_true).double().sum()
        self.absolute_error += image.frame_absolute_error(errors_pred, errors_true).double().sum()
        if self.data_range is None:
            clipped, data_range, ssim_range = frames_pred.clamp(0.0, 1.0), 1.0, self.ssim_data_range
        else:
            clipped, data_range, ssim_range = frames_pred, self.data_range, self.data_range
        if 'psnr' in self.metrics:
            self.psnr += image.psnr(clipped, frames_true, data_range).double().sum()
        if 'ssim' in self.metrics:
            self.ssim += image.ssim(clipped, frames_true, ssim_range).double().sum()
        if 'snr' in self.metrics:
            self.snr += image.snr(clipped, frames_true).double().sum()
        if 'csi' in self.metrics:
            counts = weather.contingency(self.physical(pred), self.physical(true), self.csi_thresholds)
            self.contingency += counts.double()
        if 'nino' in self.metrics:
            p = weather.nino34_index(self.physical(pred)).double()
            t = weather.nino34_index(self.physical(true)).double()
            self.nino_sums += torch.stack([torch.ones_like(p), p, t, p * p, t * t, p * t]).sum(dim=1)

    def physical(self, values: torch.Tensor) -> torch.Tensor:
        """Model-range ``(..., C, H, W)`` values in physical units, ``values · std + mean`` (:attr:`scaling`)."""
        return values * self.scale_std.to(values.device) + self.scale_mean.to(values.device)

    def compute(self) -> dict[str, float]:
        frames = self.frames.clamp(min=1)
        results: dict[str, float] = {}
        mse = float(self.squared_error / frames)
        if 'mse' in self.metrics:
            results['mse'] = mse
        if 'mae' in self.metrics:
            results['mae'] = float(self.absolute_error / frames)
        if 'rmse' in self.metrics:
            results['rmse'] = math.sqrt(mse)
        for name in ('psnr', 'ssim', 'snr'):
            if name in self.metrics:
                results[name] = float(getattr(self, name) / frames)
        if 'csi' in self.metrics:
            results.update(self._csi())
        if 'nino' in self.metrics:
            results.update(self._nino())
        return results

    def _csi(self) -> dict[str, float]:
        hits, misses, false_alarms = self.contingency.unbind(dim=1)
        total = hits + misses + false_alarms
        csi = torch.where(total > 0, hits / total.clamp(min=1), torch.full_like(hits, float('nan')))
        scores = {f'csi_{threshold:g}': float(value) for threshold, value in zip(self.csi_thresholds, csi)}
        scores['csi_m'] = float(torch.nanmean(csi))
        return scores

    def _nino(self) -> dict[str, float]:
        n, sp, st, spp, stt, spt = self.nino_sums
        covariance = n * spt - sp * st
        correlation = covariance / torch.sqrt((n * spp - sp * sp) * (n * stt - st * st))
        weights = weather.nino_lead_weights(correlation.numel()).to(correlation)
        squared_error = (spp - 2 * spt + stt) / n
        return {
            'c_nino34_m': float(correlation.mean()),
            'c_nino34_wm': float((weights * correlation).sum()),
            'nino_rmse': float(squared_error.sqrt().mean()),
        }
