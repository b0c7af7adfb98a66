"""Figures: input / ground-truth / prediction frame grids (paper Fig. 5) and learned ranks (Fig. 4)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path) -> Path:
    """Lay out, write as PNG (creating the folder) and close ``figure``."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)
    return path


def _frame_image(frame: np.ndarray) -> tuple[np.ndarray, dict]:
    """``(C, H, W)`` → an image and imshow options: RGB for 3 channels, else the first channel."""
    if frame.shape[0] == 3:
        return np.clip(frame.transpose(1, 2, 0), 0, 1), {}
    return frame[0], {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}


def save_prediction_grid(inputs: np.ndarray, trues: np.ndarray, preds: np.ndarray, path, title: str = '',
                         max_columns: int = 10) -> Path:
    """Rows input ``(T, C, H, W)``, ground truth and prediction ``(T', C, H, W)``, evenly subsampled;
    frames are numbered from the first input (future frames are T + 1 … T + T')."""
    plt = _pyplot()
    rows = [('input', inputs, 0), ('ground truth', trues, len(inputs)), ('prediction', preds, len(inputs))]
    columns = min(max_columns, max(len(r[1]) for r in rows))
    figure, axes = plt.subplots(3, columns, figsize=(1.4 * columns, 4.6), squeeze=False)
    for row, (label, frames, first) in enumerate(rows):
        picks = np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int)
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(picks):
                image, options = _frame_image(frames[picks[column]])
                axis.imshow(image, **options)
                axis.set_title(f't={first + picks[column] + 1}', fontsize=7)
            else:
                axis.axis('off')
        axes[row, 0].set_ylabel(label, fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def save_rank_heatmap(ranks: np.ndarray, columns: Sequence[str], path, title: str = 'mean rank of the experts',
                      center: Optional[float] = None) -> Path:
    """Heatmap of ``ranks (layers, len(columns))``, a row per block (paper Fig. 4), values in the cells.

    The colour scale is diverging around ``center`` (default: the mean of the table; the training
    tools pass the mean rank per expert, i.e. the budget per expert), symmetric and at least ±0.5 wide, so that ranks above and below the mean
    read as warm and cold and a search that moved nothing reads as one neutral colour. Columns that
    are NaN throughout (a matrix without adapters) are left out.
    """
    plt = _pyplot()
    ranks = np.asarray(ranks, dtype=float)
    keep = [i for i in range(ranks.shape[1]) if not np.isnan(ranks[:, i]).all()] if ranks.size else []
    ranks, columns = ranks[:, keep], [columns[i] for i in keep]
    if center is None:
        center = float(np.nanmean(ranks)) if ranks.size else 0.0
    spread = max(0.5, float(np.nanmax(np.abs(ranks - center)))) if ranks.size else 0.5
    figure, axis = plt.subplots(figsize=(1.2 * len(columns) + 2.0, 0.35 * len(ranks) + 1.5))
    image = axis.imshow(ranks, cmap='RdBu_r', vmin=center - spread, vmax=center + spread, aspect='auto')
    axis.set_xticks(range(len(columns)), columns)
    axis.set_yticks(range(len(ranks)), [f'block {i}' for i in range(len(ranks))])
    for (row, column), value in np.ndenumerate(ranks):
        color = 'white' if abs(value - center) > 0.6 * spread else 'black'
        axis.text(column, row, f'{value:.2f}', ha='center', va='center', fontsize=7, color=color)
    figure.colorbar(image, ax=axis, label=f'rank (centre {center:.2f})')
    axis.set_title(title)
    return _save(figure, path)
