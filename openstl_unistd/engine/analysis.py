"""A model's size and shapes without data or weights: what ``tools/analyze.py`` prints."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch

from .config import build_model, build_tasks, load_config
from .experiment import model_label
from ..models.parameters import count_parameters

BASELINE_MODELS = ('simvp_v1', 'simvp_v2', 'tau', 'earthformer')
"""Baseline model configs under ``configs/_base_/models/`` that ``--compare`` uses by default."""


def config_with_model(cfg: Mapping, model_config: str | Path) -> tuple[str, dict]:
    """``(name, cfg)``: ``cfg`` with its ``model`` (and ``method``) taken from another config file, named
    after that file; how baselines are compared at the same tasks."""
    other = load_config(model_config)
    merged = dict(cfg)
    merged['model'] = other['model']
    if 'method' in other:
        merged['method'] = other['method']
    return Path(model_config).stem, merged


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
    backbone = cfg['model'].get('backbone')
    lines = [f"model: {model_label(cfg)} ({f'backbone {backbone!r}; ' if backbone else ''}"
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
    lines.append(_row(('task', 'input (B,T,C,H,W)', 'output (B,T\',C,H,W)', 'latent grid', 'passes'),
                      widths + (8,)))
    shapes = output_shapes(model, batch_size)
    for spec in build_tasks(cfg):
        grid = model.latent_grid(spec.name)
        lines.append(_row((spec.name, str((batch_size, *spec.input_shape)), str(shapes[spec.name]),
                           f'{grid[0]}x{grid[1]}' if grid else '-', model.passes(spec.name)), widths + (8,)))
    return '\n'.join(lines)


def model_figures(model: torch.nn.Module, flops: bool = True) -> dict:
    """Parameters and, per task, shapes, latent grid, passes and G-MACs of one full prediction: what
    ``tools/analyze.py --json`` prints."""
    count = count_parameters(model)
    tasks = {}
    for name, spec in model.tasks.items():
        grid = model.latent_grid(name)
        tasks[name] = {'input': list(spec.input_shape), 'output': list(spec.output_shape),
                       'token_grid': list(grid) if grid else None, 'passes': model.passes(name)}
        if flops:
            tasks[name]['gmacs'] = round(multiply_accumulates(model, name) / 1e9, 4)
    return {'trainable_params': count.trainable, 'frozen_params': count.frozen, 'tasks': tasks}


def figures_report(cfg: Mapping, model_configs: Sequence[str | Path] = (), flops: bool = True) -> dict:
    """:func:`model_figures` of ``cfg``'s model, with ``baselines`` (name → figures) when ``model_configs``
    are given: the JSON object of ``tools/analyze.py --json``."""
    report = model_figures(build_structure(cfg), flops)
    if model_configs:
        report['baselines'] = {}
        for path in model_configs:
            name, merged = config_with_model(cfg, path)
            report['baselines'][name] = model_figures(build_structure(merged), flops)
    return report


def multiply_accumulates(model: torch.nn.Module, task: str) -> int:
    """Multiply-accumulates of one sample of ``task`` (what fvcore and OpenSTL report as "FLOPs").

    Counted by ``torch.utils.flop_counter`` over the model's whole prediction of ``T'`` frames (every
    rollout pass), on ``meta`` tensors where attention runs as explicit matrix products, so
    attention's ``QKᵀ`` and ``AV`` are included; element-wise ops are not. The model runs in eval mode
    on zeros and is left as it was (a training-mode pass would move batch-norm statistics).
    """
    from torch.utils.flop_counter import FlopCounterMode

    spec = model.tasks[task]
    x = torch.zeros(1, *spec.input_shape, device=next(model.parameters()).device)
    training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:  # no no_grad(): its module tracker needs grad_fns
            model(x, task)
    finally:
        model.train(training)
    return counter.get_total_flops() // 2


def comparison_report(cfg: Mapping, model_configs: Sequence[str | Path], flops: bool = True) -> str:
    """Trainable parameters (paper Table 7) and per-task G-MACs (Table 9) of ``cfg``'s model and of the
    models of ``model_configs`` (files holding a ``model`` dict), all built for ``cfg``'s tasks."""
    tasks = build_tasks(cfg)
    models = {cfg['model']['type']: build_structure(cfg)}
    for path in model_configs:
        name, merged = config_with_model(cfg, path)
        models[name] = build_structure(merged)
    names = ', '.join(t.name for t in tasks)
    lines = [f'trainable parameters for the tasks {names} (paper Table 7)', '']
    widths = (16, 14, 14)
    lines.append(_row(('model', 'trainable', 'frozen'), widths))
    for name, model in models.items():
        count = count_parameters(model)
        lines.append(_row((name, f'{count.trainable / 1e6:.2f}M', f'{count.frozen / 1e6:.2f}M'), widths))
    if flops:
        lines += ['', 'G-MACs per sample (fvcore/OpenSTL "GFLOPs"; attention matmuls counted; paper Table 9)', '']
        widths = (14,) + (12,) * len(models)
        lines.append(_row(('task', *models), widths))
        for spec in tasks:
            cells = [f'{multiply_accumulates(model, spec.name) / 1e9:.2f}' for model in models.values()]
            lines.append(_row((spec.name, *cells), widths))
    return '\n'.join(lines)
