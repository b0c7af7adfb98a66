"""The report of each ``tools/benchmark.py`` command: it measures, then returns the markdown it prints
(the header line, one line saying what was measured and how, and the table)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..tasks import PAPER_TASKS, resolve_tasks
from .markdown import header, table

BASELINES = tuple(f'configs/_base_/models/{name}.py' for name in ('simvp_v1', 'simvp_v2', 'tau', 'earthformer'))
"""The baselines' model configs (repository paths) that ``train/infer --compare`` times by default."""

MEMORY_BUDGET_GIB = 40
"""The memory a training step should fit in (an A100-40GB): the memory table's headroom column."""

SEVIR_TEST_FRAMES = 12144 * 12
"""Frames of SEVIR's test set (12 144 events × 12 target frames): the eval table's time for a test set."""


def step_report(cfg, model_configs: Sequence[str], tasks: Optional[Sequence[str]], batch_size: int,
                device: torch.device, train: bool, bf16: bool, sdpa: bool, compile_model: bool, warmup: int, repeats: int, command: str,
                deadline: Optional[float] = None) -> str:
    """``train``/``infer``: step time, throughput, memory, FLOPs and MFU of ``cfg``'s model and of each of
    ``model_configs`` on every task (default: the config's; :func:`~.speed.compare_models`)."""
    from .speed import compare_models

    rows = compare_models(cfg, model_configs, list(tasks or cfg['tasks']), batch_size, device, train, bf16, sdpa,
                          compile_model, warmup, repeats, deadline)
    return '\n'.join([
        header(device, command),
        f"{'train' if train else 'infer'} step, batch {batch_size}, {'bf16 autocast' if bf16 else 'fp32'}, "
        f"SDPA {'on' if sdpa else 'off'}, torch.compile {'on' if compile_model else 'off'}",
        table(rows, [('task', 'task', ''), ('model', 'model', ''), ('step_ms', 'step ms', '.1f'),
                     ('samples_per_s', 'samples/s', '.1f'),
                     ('peak_mem_mb', 'peak MiB (CUDA alloc. / CPU RSS)', '.0f'), ('model_tflop', 'TFLOP/step', '.4g'),
                     ('tflops', 'TFLOP/s', '.4g'), ('mfu', 'MFU', '.1%'), ('vs_first', 'time vs first', '.2f')])])


ADAPTER_VARIANTS = (('frozen ViT blocks alone', dict(lora=False, temporal=False)), ('+ RA-MoE', dict(temporal=False)),
                    ('+ RA-MoE + temporal', {}))
"""The backbones the adapter table compares: label and the model options that build each."""


def adapters_report(cfg, tasks: Optional[Sequence[str]], batch_size: int, device: torch.device, bf16: bool, sdpa: bool,
                    compile_blocks: bool, warmup: int, repeats: int, command: str) -> str:
    """``adapters``: the backbone's training step with and without the RA-MoE and temporal modules, per
    task's token count (default: the config's tasks), and each one's overhead over the frozen blocks alone."""
    from ..engine.config import build_model
    from .speed import backbone_step_seconds, set_fused_attention

    specs = resolve_tasks(list(tasks or cfg['tasks']))
    variants = {}
    for label, overrides in ADAPTER_VARIANTS:
        variant = dict(cfg)
        variant['model'] = {**dict(cfg['model']), **overrides}
        model = build_model(variant, tasks=specs[:1], load_pretrained=False)
        set_fused_attention(model, sdpa)
        variants[label] = model
    rows = []
    for spec in specs:
        grid_h, grid_w = spec.token_grid
        base = None
        for label, model in variants.items():
            seconds = backbone_step_seconds(model, grid_h * grid_w, batch_size, device, bf16, warmup, repeats,
                                            compile_blocks)
            base = base or seconds
            rows.append({'task': spec.name, 'tokens': grid_h * grid_w, 'variant': label, 'step_ms': seconds * 1e3,
                         'overhead': seconds / base - 1})
    return '\n'.join([
        header(device, command),
        f"backbone training step (forward + backward), batch {batch_size}, {'bf16 autocast' if bf16 else 'fp32'}, "
        f"blocks {'compiled (trainer.compile)' if compile_blocks else 'eager'}; target: RA-MoE + temporal ≤ +15%",
        table(rows, [('task', 'task', ''), ('tokens', 'tokens', 'd'), ('variant', 'backbone', ''),
                     ('step_ms', 'step ms', '.1f'), ('overhead', 'vs frozen alone', '+.1%')])])


def most_tokens(tasks: Sequence) -> str:
    """The name of the task with the largest token grid."""
    return max(resolve_tasks(list(tasks)), key=lambda t: t.token_grid[0] * t.token_grid[1]).name


def kernels_report(cfg, task: Optional[str], batch_size: int, compile_blocks: bool, summary_only: bool,
                   command: str) -> str:
    """``kernels``: kernels per ViT block in a training step, eager and compiled, and the roofline at the
    token grid of ``task`` (default: the config's task with the most tokens); ``summary_only``: the JSON
    summary alone."""
    from .kernels import H200_BYTES, H200_FLOPS, kernel_report

    task = task or most_tokens(cfg['tasks'])
    rows, summary = kernel_report(cfg, task, batch_size, compile_blocks)
    if summary_only:
        return json.dumps(summary)
    grid = resolve_tasks([task])[0].token_grid
    lines = [
        header(torch.device('cpu'), command),
        f'one ViT block, training step (forward + backward to the tokens and the trainable weights), bf16 '
        f'autocast; roofline at batch {batch_size} × {grid[0] * grid[1]} tokens ({task}) with '
        f'{H200_FLOPS / 1e12:g} TFLOP/s and {H200_BYTES / 1e12:g} TB/s; compiled: torch.compile, counted on this '
        f'machine; targets: eager ≤ 2× and compiled ≤ 1.3× the frozen block',
        table(rows, [('variant', 'block', ''), ('kernels', 'kernels eager', 'd'), ('vs_frozen', 'vs frozen', '.2f'),
                     ('compiled', 'kernels compiled', 'd'), ('compiled_vs_frozen', 'vs frozen', '.2f'),
                     ('gflop', 'GFLOP', '.1f'), ('gbyte', 'GB moved', '.2f'), ('roofline_ms', 'roofline ms', '.3f'),
                     ('roofline_vs_frozen', 'vs frozen', '.2f')]),
        '',
        'kernels by operator (eager): ' + '; '.join(
            f"{row['variant']}: " + ', '.join(f'{name} {n}' for name, n in sorted(row['by_operator'].items(),
                                                                           key=lambda kv: -kv[1]))
            for row in rows)]
    lines += [f"compile failed for {row['variant']}: {row['compile_error']}"
              for row in rows if row.get('compile_error')]
    lines.append(f'summary: {json.dumps(summary)}')
    return '\n'.join(lines)


def memory_report(cfg, tasks: Optional[Sequence[str]], batch_size: int, device: torch.device, bf16: bool,
                  measure: Sequence[str], command: str) -> str:
    """``memory``: estimated peak memory of a training step per task (default: the config's), for UniSTD
    without and with
    checkpointing of the task ends and with the config's own choice; the tasks in ``measure`` also get
    one real step's measured peak on ``device``."""
    from ..engine.analysis import build_structure
    from ..engine.config import build_model
    from .memory import GIB, estimate_training_peaks, measured_training_peak
    from .speed import OUT_OF_MEMORY, free_memory, step_flops

    tasks = list(tasks or cfg['tasks'])
    chosen = build_structure(cfg)
    unistd = cfg['model']['type'] == 'UniSTD'
    variants = {'config': chosen}
    if unistd:
        for label, value in (('none', False), ('ends', True)):
            variant = dict(cfg)
            variant['model'] = {**dict(cfg['model']), 'checkpointing': value}
            variants[label] = build_structure(variant)
        if not chosen.backbone.checkpoint:      # the config's peak is one of the two per task
            del variants['config']
    estimates = {label: estimate_training_peaks(model, tasks, batch_size, bf16) for label, model in variants.items()}
    rows = []
    for task in tasks:
        first = estimates['none' if unistd else 'config'][task]
        row = {'task': task, 'peak': first.peak / GIB, 'weights': first.weights / GIB,
               'optimizer': first.optimizer / GIB, 'gradients': first.gradients / GIB,
               'activations': first.activations / GIB, 'phase': first.phase}
        if unistd:
            row['ends'] = estimates['ends'][task].peak / GIB
            flops = [step_flops(variants[label], task, batch_size, train=True) for label in ('none', 'ends')]
            row['flops'] = flops[1] / flops[0] - 1
            row['chosen'] = 'ends' + (' + blocks' if chosen.backbone.checkpoint else '') \
                if chosen.encoders[task].checkpoint else ('blocks' if chosen.backbone.checkpoint else 'no')
            own = estimates['config'][task] if 'config' in estimates else (
                estimates['ends' if chosen.encoders[task].checkpoint else 'none'][task])
            row['own'] = own.peak / GIB
        else:
            row['own'] = row['peak']
        row['headroom'] = MEMORY_BUDGET_GIB - row['own']
        if task in measure:
            try:
                model = build_model(cfg, load_pretrained=False)
                row['measured'] = measured_training_peak(model, task, batch_size, device, bf16).peak / GIB
                row['ratio'] = row['own'] / row['measured']
            except OUT_OF_MEMORY:
                row['measured'] = 'out of memory'
            model = None
            free_memory(device)
        rows.append(row)
    columns = [('task', 'task', ''), ('peak', 'peak, no checkpointing' if unistd else 'peak', '.2f'),
               ('weights', 'weights', '.2f'), ('optimizer', 'AdamW states', '.2f'), ('gradients', 'gradients', '.3f'),
               ('activations', 'activations', '.2f'), ('phase', 'peak in', '')]
    if unistd:
        columns += [('ends', "peak, 'ends'", '.2f'), ('flops', "FLOPs of 'ends'", '+.1%'),
                    ('chosen', 'config checkpoints', ''), ('own', "config's peak", '.2f')]
    columns += [('headroom', f'left of {MEMORY_BUDGET_GIB} GiB', '.1f')]
    if measure:
        columns += [('measured', f'measured ({device.type})', '.2f'), ('ratio', 'estimate / measured', '.3f')]
    return '\n'.join([
        header(device, command),
        f"training step (forward, backward, AdamW), batch {batch_size}, "
        f"{'bf16 autocast (CUDA rules)' if bf16 else 'fp32'}: peak allocated memory in GiB, estimated on "
        f"fake tensors (openstl_unistd/benchmarks/memory.py); 'ends' checkpoints every task's full-resolution "
        f"task-end stages{'; measured: one real step on ' + device.type if measure else ''}",
        table(rows, columns)])


def ramoe_report(batch_size: int, tokens: int, device: torch.device, warmup: int, repeats: int, command: str) -> str:
    """``ramoe``: the Q/K/V RA-MoE adapter of a ViT-B block computed per expert, stacked, with frozen
    ranks, and the frozen ``qkv`` layer alone and with its adapter, each against the stacked one."""
    from .speed import ra_moe_milliseconds

    times = ra_moe_milliseconds(batch_size, tokens, device, warmup, repeats)
    rows = [{'variant': label, 'ms': ms, 'vs_stacked': ms / times['stacked']} for label, ms in times.items()]
    return '\n'.join([
        header(device, command),
        f'Q/K/V RA-MoE of one ViT-B block (3 × 6 experts, rank ≤ 8) on ({batch_size}, {tokens}, 768), forward',
        table(rows, [('variant', 'computation', ''), ('ms', 'ms', '.3f'), ('vs_stacked', 'vs stacked', '.2f')])])


def eval_report(tasks: Optional[Sequence[str]], frames: int, device: torch.device, repeats: int, command: str) -> str:
    """``eval``: frames per second of every metric of each task (streaming ``ForecastMetrics``) against
    scikit-image's SSIM frame by frame, and the minutes a whole test set takes (SEVIR's real size);
    default task: SEVIR."""
    from .speed import metric_frames_per_second, reference_ssim_frames_per_second

    rows = []
    for name in tasks or ['sevir']:
        spec = PAPER_TASKS[name]
        frame = (spec.channels, spec.height, spec.width)
        metrics = sorted(set([m for m in spec.metrics if m != 'nino'] + ['psnr', 'ssim']))
        rate = metric_frames_per_second(metrics, frame, frames, device, repeats, std=255.0)
        total = SEVIR_TEST_FRAMES if name == 'sevir' else frames
        rows.append({'task': name, 'metrics': ', '.join(metrics), 'frames_per_s': rate,
                     'reference': reference_ssim_frames_per_second(frame), 'minutes': total / rate / 60,
                     'frames': total})
    return '\n'.join([
        header(device, command),
        f'metrics of {frames} frames per update (streaming ForecastMetrics) vs scikit-image SSIM frame by frame',
        table(rows, [('task', 'task', ''), ('metrics', 'metrics', ''), ('frames_per_s', 'frames/s', '.0f'),
                     ('reference', 'skimage SSIM frames/s', '.0f'), ('frames', 'test frames', 'd'),
                     ('minutes', 'minutes for the test set', '.3g')])])


def data_report(tasks: Optional[Sequence[str]], workers: Sequence[int], batch_size: int, samples: int,
                command: str) -> str:
    """``data``: samples per second of each paper loader (default: all) on fixtures in the real formats, per
    worker count."""
    from .data import FIXTURES, benchmark_loaders

    with tempfile.TemporaryDirectory() as root:
        rows = benchmark_loaders(Path(root), list(tasks or FIXTURES), workers, batch_size, samples)
    for row in rows:
        row['shape'] = str(row['sample_shape'])
    return '\n'.join([
        header(torch.device('cpu'), command),
        f'loader throughput, samples/s (batch {batch_size}, {samples} samples)',
        table(rows, [('task', 'task', ''), ('shape', 'sample (T, C, H, W)', '')]
              + [(f'workers={w}', f'workers={w}', '.0f') for w in workers])])


def ddp_report(cfg: dict, tasks: Optional[Sequence[str]], world_size: int, batch_size: int, device: torch.device,
               rounds: int, warmup: int, repeats: int, command: str) -> str:
    """``ddp``: a DDP training step of one task without and with unused-parameter detection, and of all
    ``tasks`` (default: the config's; one per step, detection on); the minimum over ``rounds`` interleaved
    rounds counts."""
    from .ddp import ddp_step_seconds

    tasks = list(tasks or cfg['tasks'])
    variants = ((f'one task ({tasks[0]})', tasks[:1], False), (f'one task ({tasks[0]})', tasks[:1], True),
                (f'{len(tasks)} tasks, one per step', tasks, True))
    seconds = [[] for _ in variants]
    for _ in range(rounds):          # interleaved rounds; the least disturbed (minimum) median counts
        for i, (_, names, find_unused) in enumerate(variants):
            seconds[i].append(ddp_step_seconds(cfg, list(names), find_unused, world_size, batch_size, warmup, repeats,
                                               device.type))
    rows = [{'model': label, 'find_unused': 'yes' if find_unused else 'no', 'step_ms': min(times) * 1e3}
            for (label, _, find_unused), times in zip(variants, seconds)]
    for row, vs in zip(rows, ('+0.0%', f"{rows[1]['step_ms'] / rows[0]['step_ms'] - 1:+.1%}", '-')):
        row['vs'] = vs
    return '\n'.join([
        header(device, command),
        f'DDP training step, {world_size} processes ({"NCCL" if device.type == "cuda" else "gloo"}), batch '
        f'{batch_size} per process; minimum over {rounds} interleaved rounds of the median of {repeats} steps',
        table(rows, [('model', 'model', ''), ('find_unused', 'find_unused_parameters', ''),
                     ('step_ms', 'step ms', '.1f'), ('vs', 'vs detection off', '')])])
