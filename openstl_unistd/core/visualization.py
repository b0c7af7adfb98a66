"""Figures: input / ground-truth / prediction frame grids (paper Fig. 5), learned ranks (Fig. 4), forecast strips and GIFs."""
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


def _save(figure, path, tight: bool = True) -> Path:
    """Lay out (unless its own layout engine does), write as PNG (creating the folder) and close ``figure``."""
    if tight:
        figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)
    return path


IMAGE_SCALE = {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}
"""imshow options of frames in [0, 1]."""


def colour_scale(inputs: np.ndarray, trues: np.ndarray, field: bool) -> dict:
    """imshow options shared by every panel of a figure: images in [0, 1] with viridis; a field on the
    range of its inputs and truth, with a diverging map centred on 0 when it takes both signs."""
    if not field:
        return dict(IMAGE_SCALE)
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


def _draw_frame_rows(axes, rows, scale: dict, field: bool):
    """Fill ``axes`` (rows × columns) with ``rows`` of ``(label, frames (N, C, H, W), number of the first
    frame − 1)``, each evenly subsampled to the columns, numbered ``t=…``; returns the last image drawn."""
    columns = axes.shape[1]
    shown = None
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
    return shown


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
    shown = _draw_frame_rows(axes, rows, scale, field)
    figure.suptitle(title)
    if field:
        figure.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(figure, path, tight=not field)


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


def _unit_range(frames: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Frames mapped to [0, 1] by ``value_range`` (low, high), clipped."""
    low, high = value_range
    return np.clip((frames - low) / ((high - low) or 1.0), 0.0, 1.0)


def data_range(*arrays: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` over the finite values of ``arrays`` (the colour range of a forecast figure)."""
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays])
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def save_forecast_strip(inputs: np.ndarray, preds: np.ndarray, path, title: str = '',
                        value_range: tuple[float, float] | None = None, max_columns: int = 12) -> Path:
    """Rows input ``(T, C, H, W)`` and forecast ``(K, C, H, W)`` (physical units, one colour range
    ``value_range``, default their joint min/max), evenly subsampled, frames numbered from the first input."""
    plt = _pyplot()
    value_range = value_range or data_range(inputs, preds)
    rows = [('input', _unit_range(inputs, value_range), 0), ('forecast', _unit_range(preds, value_range), len(inputs))]
    columns = min(max_columns, max(len(r[1]) for r in rows))
    figure, axes = plt.subplots(2, columns, figsize=(1.4 * columns, 3.2), squeeze=False)
    _draw_frame_rows(axes, rows, IMAGE_SCALE, False)
    figure.suptitle(f'{title}  [{value_range[0]:.3g}, {value_range[1]:.3g}]'.strip())
    return _save(figure, path)


def save_forecast_gif(inputs: np.ndarray, preds: np.ndarray, path, value_range: tuple[float, float] | None = None,
                      frame_ms: int = 250, min_size: int = 128) -> Path:
    """An animated GIF of the inputs ``(T, C, H, W)`` then the forecast ``(K, C, H, W)`` (physical units, one
    colour range); forecast frames have a red border, inputs a white one; small frames are enlarged."""
    from matplotlib import colormaps
    from PIL import Image

    value_range = value_range or data_range(inputs, preds)
    colour = colormaps['viridis']
    images = []
    for index, frame in enumerate(np.concatenate([inputs, preds])):
        unit = _unit_range(frame, value_range)
        rgb = unit.transpose(1, 2, 0) if unit.shape[0] == 3 else colour(unit[0])[..., :3]
        pixels = (rgb * 255).round().astype(np.uint8)
        scale = max(1, -(-min_size // max(pixels.shape[:2])))
        pixels = np.kron(pixels, np.ones((scale, scale, 1), dtype=np.uint8))
        border = (255, 40, 40) if index >= len(inputs) else (255, 255, 255)
        pixels = np.pad(pixels, ((3, 3), (3, 3), (0, 0)))
        pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:] = border, border, border, border
        images.append(Image.fromarray(pixels))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return path
