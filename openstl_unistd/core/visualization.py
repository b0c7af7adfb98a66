"""Figures: input / ground-truth / prediction frame grids (paper Fig. 5) and learned ranks (Fig. 4)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path, tight: bool = True) -> Path:
    """Lay out (unless its own layout engine does), write as PNG (creating the folder) and close ``figure``."""
    if tight:
        figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)
    return path


def colour_scale(inputs: np.ndarray, trues: np.ndarray, field: bool) -> dict:
    """imshow options shared by every panel of a figure: images in [0, 1] with viridis; a field on the
    range of its inputs and truth, with a diverging map centred on 0 when it takes both signs."""
    if not field:
        return {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}
    known = np.concatenate([inputs[:, 0].ravel(), trues[:, 0].ravel()])
    low, high = float(np.nanmin(known)), float(np.nanmax(known))
    if low < 0 < high:
        bound = max(-low, high)
        return {'cmap': 'RdBu_r', 'vmin': -bound, 'vmax': bound}
    return {'cmap': 'viridis', 'vmin': low, 'vmax': high if high > low else low + 1}


def _frame_image(frame: np.ndarray, scale: dict, field: bool) -> tuple[np.ndarray, dict]:
    """``(C, H, W)`` → an image and imshow options: RGB for 3-channel images, else the first channel."""
    if frame.shape[0] == 3 and not field:
        return np.clip(frame.transpose(1, 2, 0), 0, 1), {}
    return frame[0], scale


def save_prediction_grid(inputs: np.ndarray, trues: np.ndarray, preds: np.ndarray, path, title: str = '',
                         max_columns: int = 10, field: bool = False) -> Path:
    """Rows input ``(T, C, H, W)``, ground truth and prediction ``(T', C, H, W)``, evenly subsampled;
    frames are numbered from the first input (future frames are T + 1 … T + T').

    ``field=True`` (values in physical units, first channel shown): one colour scale for all rows,
    from the inputs and truth, diverging around 0 for a signed field, with a colour bar; otherwise
    model-range images in [0, 1].
    """
    plt = _pyplot()
    scale = colour_scale(inputs, trues, field)
    rows = [('input', inputs, 0), ('ground truth', trues, len(inputs)), ('prediction', preds, len(inputs))]
    columns = min(max_columns, max(len(r[1]) for r in rows))
    figure, axes = plt.subplots(3, columns, figsize=(1.4 * columns + (1.0 if field else 0), 4.6), squeeze=False,
                                layout='constrained' if field else None)
    for row, (label, frames, first) in enumerate(rows):
        picks = np.linspace(0, len(frames) - 1, min(columns, len(frames))).round().astype(int)
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(picks):
                image, options = _frame_image(frames[picks[column]], scale, field)
                shown = axis.imshow(image, **options)
                axis.set_title(f't={first + picks[column] + 1}', fontsize=7)
            else:
                axis.axis('off')
        axes[row, 0].set_ylabel(label, fontsize=8)
    figure.suptitle(title)
    if field:
        figure.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(figure, path, tight=not field)


def save_rank_heatmap(ranks: np.ndarray, columns: Sequence[str], path, title: str = 'mean rank of the experts') -> Path:
    """Heatmap of ``ranks (layers, len(columns))`` with the values written in the cells."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(1.2 * len(columns) + 1.5, 0.35 * len(ranks) + 1.5))
    image = axis.imshow(ranks, cmap='magma', aspect='auto')
    axis.set_xticks(range(len(columns)), columns)
    axis.set_yticks(range(len(ranks)), [f'block {i}' for i in range(len(ranks))])
    for (row, column), value in np.ndenumerate(ranks):
        axis.text(column, row, f'{value:.1f}', ha='center', va='center', fontsize=7, color='gray')
    figure.colorbar(image, ax=axis)
    axis.set_title(title)
    return _save(figure, path)
