"""A model's size and shapes without data or weights: what ``tools/analyze.py`` prints."""
from __future__ import annotations

from typing import Mapping

import torch

from .config import build_model, build_tasks
from .parameters import count_parameters


def build_structure(cfg: Mapping) -> torch.nn.Module:
    """The config's model on the ``meta`` device: right shapes and counts, no memory, no weights."""
    with torch.device('meta'):
        return build_model(cfg, load_pretrained=False)


def output_shapes(model: torch.nn.Module, batch_size: int = 1) -> dict[str, tuple[int, ...]]:
    """Per task, the shape ``model`` returns for a batch of inputs (run on ``meta`` tensors)."""
    shapes = {}
    for name, spec in model.tasks.items():
        x = torch.empty(batch_size, *spec.input_shape, device='meta')
        with torch.no_grad():
            shapes[name] = tuple(model(x, name).shape)
    return shapes


def _row(cells, widths) -> str:
    return '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def model_report(cfg: Mapping, batch_size: int = 1) -> str:
    """Parameter counts (total, trainable, per part) and per-task output shapes of ``cfg``'s model."""
    model = build_structure(cfg)
    total = count_parameters(model)
    lines = [f"model: {cfg['model']['type']} (backbone {cfg['model'].get('backbone')!r}; "
             'structure only, pretrained weights not loaded)', '']
    widths = (24, 14, 14)
    lines.append(_row(('part', 'trainable', 'frozen'), widths))
    if hasattr(model, 'parameter_breakdown'):
        for part, count in model.parameter_breakdown().items():
            lines.append(_row((part, f'{count.trainable:,}', f'{count.frozen:,}'), widths))
    lines.append(_row(('total', f'{total.trainable:,}', f'{total.frozen:,}'), widths))
    lines.append(f'total parameters: {total.total:,} ({total.total / 1e6:.2f}M); '
                 f'trainable: {total.trainable:,} ({total.trainable / 1e6:.2f}M)')
    lines.append('')
    widths = (16, 22, 22, 10)
    lines.append(_row(('task', 'input (B,T,C,H,W)', 'output (B,T\',C,H,W)', 'tokens'), widths))
    shapes = output_shapes(model, batch_size)
    for spec in build_tasks(cfg):
        grid = spec.token_grid
        lines.append(_row((spec.name, str((batch_size, *spec.input_shape)), str(shapes[spec.name]),
                           f'{grid[0]}x{grid[1]}'), widths))
    return '\n'.join(lines)
