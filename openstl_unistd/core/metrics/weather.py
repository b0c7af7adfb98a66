"""Weather forecast scores: SEVIR's critical success index and ENSO's Nino3.4 index.

Both need physical values: VIL in [0, 255] for the thresholds, SST anomaly in °C for the index.
"""
from __future__ import annotations

from typing import Sequence

import torch

SEVIR_THRESHOLDS = (16, 74, 133, 160, 181, 219)
"""VIL thresholds of Earthformer's SEVIR evaluation (pixel ≥ threshold is an event)."""

NINO34_ROWS = slice(10, 13)
NINO34_COLUMNS = slice(19, 30)
"""The Nino3.4 box (5°S–5°N, 170°W–120°W) on the 24×48 ENSO grid cropped to 95–330°E."""

NINO_WINDOW = 3
"""The index is the 3-month running mean of the box-mean SST anomaly."""


def contingency(pred: torch.Tensor, true: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """``(len(thresholds), 3)`` counts of hits, misses and false alarms over all values given.

    One pass over the data: each value's bin among the sorted thresholds (how many it reaches),
    a joint histogram of prediction and target bins, and its suffix sums, from which every
    threshold's counts follow (an event at threshold k is a bin above k).
    """
    levels, order = torch.sort(torch.as_tensor(thresholds, dtype=pred.dtype, device=pred.device))
    count = len(levels) + 1
    pred_bin = torch.bucketize(pred.reshape(-1), levels, right=True)
    true_bin = torch.bucketize(true.reshape(-1), levels, right=True)
    joint = torch.bincount(pred_bin * count + true_bin, minlength=count * count).view(count, count)
    suffix = joint.flip(0, 1).cumsum(0).cumsum(1).flip(0, 1)  # suffix[i, j] = Σ_{p ≥ i, t ≥ j} joint
    above = torch.arange(1, count, device=pred.device)
    hits = suffix[above, above]
    misses = suffix[0, above] - hits
    false_alarms = suffix[above, 0] - hits
    counts = torch.stack([hits, misses, false_alarms], dim=1)
    return counts[torch.argsort(order)]


def nino34_index(sst: torch.Tensor) -> torch.Tensor:
    """``(N, T, 1, 24, 48)`` SST anomaly → ``(N, T − 2)`` Nino3.4 index (3-month running mean)."""
    box = sst[:, :, 0, NINO34_ROWS, NINO34_COLUMNS].mean(dim=(-2, -1))
    return box.unfold(dimension=1, size=NINO_WINDOW, step=1).mean(dim=-1)


def nino_lead_weights(leads: int) -> torch.Tensor:
    """Earthformer's weights of the leads in C-Nino3.4-WM: ``([1.5]·4 + [2]·7 + [3]·7 + [4]·…)·ln(lead)``."""
    base = torch.tensor(([1.5] * 4 + [2.0] * 7 + [3.0] * 7 + [4.0] * max(0, leads - 18))[:leads], dtype=torch.float64)
    return base * torch.log(torch.arange(1, leads + 1, dtype=torch.float64))
