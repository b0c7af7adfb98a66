"""Benchmarks (figures for docs/performance.md, never pass/fail tests).

    python tools/benchmark.py train -c configs/unistd/multi10.py --tasks sevir human --compare --bf16
    python tools/benchmark.py infer -c configs/unistd/multi10.py --tasks sevir --compare
    python tools/benchmark.py adapters -c configs/unistd/multi10.py --tasks sevir human
    python tools/benchmark.py memory -c configs/unistd/multi10.py --batch-size 16 --bf16   # peak per task, on the CPU
    python tools/benchmark.py ramoe [--tokens 576]
    python tools/benchmark.py kernels -c configs/unistd/multi10.py [--json]   # kernels per ViT block, roofline
    python tools/benchmark.py eval --tasks sevir
    python tools/benchmark.py data [--workers 0 2 4]
    python tools/benchmark.py ddp -c configs/unistd/demo.py --device cpu     # unused-parameter detection under DDP
    python tools/benchmark.py suite [--out performance-gpu.md] [--budget 450]   # the GPU measurements, one document

Every command prints a markdown table headed by the device, the versions and the command itself.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import platform
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch

from openstl_unistd.engine.cli import run_tool

ROOT = Path(__file__).resolve().parents[1]
BASELINES = [ROOT / 'configs' / '_base_' / 'models' / f'{name}.py' for name in ('simvp_v1', 'simvp_v2', 'tau', 'earthformer')]


def device_of(args) -> torch.device:
    return torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))


def header(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else (platform.processor() or platform.machine())
    return (f'device: {device.type} ({name}), {torch.get_num_threads()} CPU threads; torch {torch.__version__}; '
            f"command: python tools/benchmark.py {' '.join(sys.argv[1:])}")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table of ``rows`` with ``(key, title, format)`` columns."""
    lines = ['| ' + ' | '.join(title for _, title, _ in columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        cells = [format(row[key], fmt) if isinstance(row.get(key), (int, float)) else str(row.get(key, '-'))
                 for key, _, fmt in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def models(args) -> None:
    from openstl_unistd.benchmarks.speed import compare_models
    from openstl_unistd.engine.config import load_config

    cfg = load_config(args.config, args.cfg_options)
    tasks = args.tasks or list(cfg.tasks)
    device = device_of(args)
    others = (args.compare or BASELINES) if args.compare is not None else []
    rows = compare_models(cfg, others, tasks, args.batch_size, device, args.command == 'train', args.bf16,
                          not args.no_sdpa, args.compile, args.warmup, args.repeats, args.deadline)
    print(header(device))
    print(f"{args.command} step, batch {args.batch_size}, {'bf16 autocast' if args.bf16 else 'fp32'}, "
          f"SDPA {'off' if args.no_sdpa else 'on'}, torch.compile {'on' if args.compile else 'off'}")
    print(table(rows, [('task', 'task', ''), ('model', 'model', ''), ('step_ms', 'step ms', '.1f'),
                       ('samples_per_s', 'samples/s', '.1f'), ('peak_mem_mb', 'peak MiB (CUDA alloc. / CPU RSS)', '.0f'),
                       ('model_tflop', 'TFLOP/step', '.4g'), ('tflops', 'TFLOP/s', '.4g'), ('mfu', 'MFU', '.1%'),
                       ('vs_first', 'time vs first', '.2f')]))


def adapters(args) -> None:
    from openstl_unistd.benchmarks.speed import backbone_step_seconds, set_fused_attention
    from openstl_unistd.tasks import resolve_tasks
    from openstl_unistd.engine.config import build_model, load_config

    cfg = load_config(args.config, args.cfg_options)
    device = device_of(args)
    tasks = resolve_tasks(args.tasks or list(cfg.tasks))
    rows = []
    variants = {}
    for label, overrides in (('frozen ViT blocks alone', dict(lora=False, temporal=False)),
                             ('+ RA-MoE', dict(temporal=False)), ('+ RA-MoE + temporal', {})):
        variant = dict(cfg)
        variant['model'] = {**dict(cfg['model']), **overrides}
        model = build_model(variant, tasks=tasks[:1], load_pretrained=False)
        set_fused_attention(model, not args.no_sdpa)
        variants[label] = model
    for spec in tasks:
        grid_h, grid_w = spec.token_grid
        base = None
        for label, model in variants.items():
            seconds = backbone_step_seconds(model, grid_h * grid_w, args.batch_size, device, args.bf16,
                                            args.warmup, args.repeats, args.compile)
            base = base or seconds
            rows.append({'task': spec.name, 'tokens': grid_h * grid_w, 'variant': label, 'step_ms': seconds * 1e3,
                         'overhead': seconds / base - 1})
    print(header(device))
    print(f"backbone training step (forward + backward), batch {args.batch_size}, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, blocks {'compiled (trainer.compile)' if args.compile else 'eager'}; "
          f"target: RA-MoE + temporal ≤ +15%")
    print(table(rows, [('task', 'task', ''), ('tokens', 'tokens', 'd'), ('variant', 'backbone', ''),
                       ('step_ms', 'step ms', '.1f'), ('overhead', 'vs frozen alone', '+.1%')]))


def kernels(args) -> None:
    import json

    from openstl_unistd.benchmarks.kernels import H200_BYTES, H200_FLOPS, kernel_report
    from openstl_unistd.engine.config import load_config

    cfg = load_config(args.config, args.cfg_options)
    task = args.task or _most_tokens(list(cfg.tasks))
    rows, summary = kernel_report(cfg, task, args.batch_size, not args.no_compile)
    if args.json:
        print(json.dumps(summary))
        return
    print(header(torch.device('cpu')))
    grid = _grid(task)
    print(f'one ViT block, training step (forward + backward to the tokens and the trainable weights), bf16 '
          f'autocast; roofline at batch {args.batch_size} × {grid[0] * grid[1]} tokens ({task}) with '
          f'{H200_FLOPS / 1e12:g} TFLOP/s and {H200_BYTES / 1e12:g} TB/s; compiled: torch.compile, counted on this '
          f'machine; targets: eager ≤ 2× and compiled ≤ 1.3× the frozen block')
    print(table(rows, [('variant', 'block', ''), ('kernels', 'kernels eager', 'd'), ('vs_frozen', 'vs frozen', '.2f'),
                       ('compiled', 'kernels compiled', 'd'), ('compiled_vs_frozen', 'vs frozen', '.2f'),
                       ('gflop', 'GFLOP', '.1f'), ('gbyte', 'GB moved', '.2f'), ('roofline_ms', 'roofline ms', '.3f'),
                       ('roofline_vs_frozen', 'vs frozen', '.2f')]))
    print()
    print('kernels by operator (eager): ' + '; '.join(
        f"{row['variant']}: " + ', '.join(f'{name} {n}' for name, n in sorted(row['by_operator'].items(),
                                                                       key=lambda kv: -kv[1])) for row in rows))
    for row in rows:
        if row.get('compile_error'):
            print(f"compile failed for {row['variant']}: {row['compile_error']}")
    print(f'summary: {json.dumps(summary)}')


def _grid(task: str) -> tuple[int, int]:
    from openstl_unistd.tasks import resolve_tasks

    return resolve_tasks([task])[0].token_grid


def _most_tokens(tasks: list) -> str:
    from openstl_unistd.tasks import resolve_tasks

    return max(resolve_tasks(tasks), key=lambda t: t.token_grid[0] * t.token_grid[1]).name


def memory(args) -> None:
    """Estimated peak memory of a training step per task, without and with checkpointing of the task
    ends (UniSTD), the config's own choice, and with ``--measure`` the measured peak beside it."""
    from openstl_unistd.benchmarks.memory import GIB, estimate_training_peaks, measured_training_peak
    from openstl_unistd.benchmarks.speed import OUT_OF_MEMORY, free_memory, step_flops
    from openstl_unistd.engine.analysis import build_structure
    from openstl_unistd.engine.config import build_model, load_config

    cfg = load_config(args.config, args.cfg_options)
    tasks = args.tasks or list(cfg.tasks)
    device = device_of(args)
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
    estimates = {label: estimate_training_peaks(model, tasks, args.batch_size, args.bf16)
                 for label, model in variants.items()}
    rows = []
    for task in tasks:
        first = estimates['none' if unistd else 'config'][task]
        row = {'task': task, 'peak': first.peak / GIB, 'weights': first.weights / GIB,
               'optimizer': first.optimizer / GIB, 'gradients': first.gradients / GIB,
               'activations': first.activations / GIB, 'phase': first.phase}
        if unistd:
            row['ends'] = estimates['ends'][task].peak / GIB
            flops = [step_flops(variants[label], task, args.batch_size, train=True) for label in ('none', 'ends')]
            row['flops'] = flops[1] / flops[0] - 1
            row['chosen'] = 'ends' + (' + blocks' if chosen.backbone.checkpoint else '') \
                if chosen.encoders[task].checkpoint else ('blocks' if chosen.backbone.checkpoint else 'no')
            own = estimates['config'][task] if 'config' in estimates else (
                estimates['ends' if chosen.encoders[task].checkpoint else 'none'][task])
            row['own'] = own.peak / GIB
        else:
            row['own'] = row['peak']
        row['headroom'] = 40 - row['own']
        if task in (args.measure or []):
            try:
                model = build_model(cfg, load_pretrained=False)
                row['measured'] = measured_training_peak(model, task, args.batch_size, device, args.bf16).peak / GIB
                row['ratio'] = row['own'] / row['measured']
            except OUT_OF_MEMORY:
                row['measured'] = 'out of memory'
            model = None
            free_memory(device)
        rows.append(row)
    print(header(device))
    print(f"training step (forward, backward, AdamW), batch {args.batch_size}, "
          f"{'bf16 autocast (CUDA rules)' if args.bf16 else 'fp32'}: peak allocated memory in GiB, estimated on "
          f"fake tensors (openstl_unistd/benchmarks/memory.py); 'ends' checkpoints every task's full-resolution "
          f"task-end stages{'; measured: one real step on ' + device.type if args.measure else ''}")
    columns = [('task', 'task', ''), ('peak', 'peak, no checkpointing' if unistd else 'peak', '.2f'),
               ('weights', 'weights', '.2f'), ('optimizer', 'AdamW states', '.2f'), ('gradients', 'gradients', '.3f'),
               ('activations', 'activations', '.2f'), ('phase', 'peak in', '')]
    if unistd:
        columns += [('ends', "peak, 'ends'", '.2f'), ('flops', "FLOPs of 'ends'", '+.1%'),
                    ('chosen', 'config checkpoints', ''), ('own', "config's peak", '.2f')]
    columns += [('headroom', 'left of 40 GiB', '.1f')]
    if args.measure:
        columns += [('measured', f'measured ({device.type})', '.2f'), ('ratio', 'estimate / measured', '.3f')]
    print(table(rows, columns))


def ramoe(args) -> None:
    from openstl_unistd.benchmarks.speed import median_seconds, ra_moe_variants

    device = device_of(args)
    x = torch.randn(args.batch_size, args.tokens, 768, device=device)
    rows = []
    for label, module in ra_moe_variants().items():
        module = module.to(device)
        with torch.no_grad():
            seconds = median_seconds(lambda: module(x), device, args.warmup, args.repeats)
        rows.append({'variant': label, 'ms': seconds * 1e3})
    stacked = next(r['ms'] for r in rows if r['variant'] == 'stacked')
    for row in rows:
        row['vs_stacked'] = row['ms'] / stacked
    print(header(device))
    print(f'Q/K/V RA-MoE of one ViT-B block (3 × 6 experts, rank ≤ 8) on ({args.batch_size}, {args.tokens}, 768), forward')
    print(table(rows, [('variant', 'computation', ''), ('ms', 'ms', '.3f'), ('vs_stacked', 'vs stacked', '.2f')]))


def evaluation(args) -> None:
    from openstl_unistd.benchmarks.speed import metric_frames_per_second, reference_ssim_frames_per_second
    from openstl_unistd.tasks import PAPER_TASKS

    device = device_of(args)
    test_frames = {'sevir': 12144 * 12}
    rows = []
    for name in args.tasks or ['sevir']:
        spec = PAPER_TASKS[name]
        frame = (spec.channels, spec.height, spec.width)
        metrics = [m for m in spec.metrics if m != 'nino'] + ['psnr', 'ssim']
        rate = metric_frames_per_second(sorted(set(metrics)), frame, args.frames, device, args.repeats, std=255.0)
        reference = reference_ssim_frames_per_second(frame)
        total = test_frames.get(name, args.frames)
        rows.append({'task': name, 'metrics': ', '.join(sorted(set(metrics))), 'frames_per_s': rate,
                     'reference': reference, 'minutes': total / rate / 60, 'frames': total})
    print(header(device))
    print(f'metrics of {args.frames} frames per update (streaming ForecastMetrics) vs scikit-image SSIM frame by frame')
    print(table(rows, [('task', 'task', ''), ('metrics', 'metrics', ''), ('frames_per_s', 'frames/s', '.0f'),
                       ('reference', 'skimage SSIM frames/s', '.0f'), ('frames', 'test frames', 'd'),
                       ('minutes', 'minutes for the test set', '.3g')]))


def data(args) -> None:
    from openstl_unistd.benchmarks.data import FIXTURES, benchmark_loaders

    tasks = args.tasks or list(FIXTURES)
    with tempfile.TemporaryDirectory() as root:
        rows = benchmark_loaders(Path(root), tasks, args.workers, args.batch_size, args.samples)
    print(header(torch.device('cpu')))
    print(f'loader throughput, samples/s (batch {args.batch_size}, {args.samples} samples)')
    for row in rows:
        row['shape'] = str(row['sample_shape'])
    print(table(rows, [('task', 'task', ''), ('shape', 'sample (T, C, H, W)', '')]
                + [(f'workers={w}', f'workers={w}', '.0f') for w in args.workers]))


def ddp(args) -> None:
    from openstl_unistd.benchmarks.ddp import ddp_step_seconds
    from openstl_unistd.engine.config import load_config

    cfg = load_config(args.config, args.cfg_options).to_dict()
    device = device_of(args)
    tasks = args.tasks or list(cfg['tasks'])
    variants = ((f'one task ({tasks[0]})', tasks[:1], False), (f'one task ({tasks[0]})', tasks[:1], True),
                (f'{len(tasks)} tasks, one per step', tasks, True))
    seconds = [[] for _ in variants]
    for _ in range(args.rounds):          # interleaved rounds; the least disturbed (minimum) median counts
        for i, (_, names, find_unused) in enumerate(variants):
            seconds[i].append(ddp_step_seconds(cfg, names, find_unused, args.world_size, args.batch_size, args.warmup,
                                               args.repeats, device.type))
    rows = [{'model': label, 'find_unused': 'yes' if find_unused else 'no', 'step_ms': min(times) * 1e3}
            for (label, _, find_unused), times in zip(variants, seconds)]
    for row, vs in zip(rows, ('+0.0%', f"{rows[1]['step_ms'] / rows[0]['step_ms'] - 1:+.1%}", '-')):
        row['vs'] = vs
    print(header(device))
    print(f'DDP training step, {args.world_size} processes ({"NCCL" if device.type == "cuda" else "gloo"}), '
          f'batch {args.batch_size} per process; minimum over {args.rounds} interleaved rounds of the median of '
          f'{args.repeats} steps')
    print(table(rows, [('model', 'model', ''), ('find_unused', 'find_unused_parameters', ''),
                       ('step_ms', 'step ms', '.1f'), ('vs', 'vs detection off', '')]))


SUITE = [
    ('Kernels per ViT block (counted on the CPU, fake tensors)', ['kernels', '-c', 'configs/unistd/multi10.py',
                                                                 '--no-compile'], 15),
    ('Adapter overhead on the frozen blocks, eager', ['adapters', '-c', 'configs/unistd/multi10.py', '--tasks', 'sevir',
                                                      'human', '--batch-size', '16', '--bf16'], 30),
    ('Adapter overhead on the frozen blocks, compiled (trainer.compile)',
     ['adapters', '-c', 'configs/unistd/multi10.py', '--tasks', 'sevir', 'human', '--batch-size', '16', '--bf16',
      '--compile'], 150),
    ('Training step at batch 16, compiled (trainer.compile)',
     ['train', '-c', 'configs/unistd/multi10.py', '--tasks', 'sevir', 'human', '--batch-size', '16', '--bf16',
      '--compile', '--warmup', '2', '--repeats', '5'], 150),
    ('Training-step memory, estimated and measured', ['memory', '-c', 'configs/unistd/multi10.py', '--tasks', 'sevir',
                                                        'human', '--batch-size', '16', '--bf16', '--measure', 'sevir',
                                                        'human'], 60),
    ('Training step, UniSTD vs the baselines', ['train', '-c', 'configs/unistd/multi10.py', '--tasks', 'sevir', 'human',
                                                 '--batch-size', '16', '--bf16', '--compare'], 120),
    ('Inference step, every paper task', ['infer', '-c', 'configs/unistd/multi10.py', '--batch-size', '16', '--bf16',
                                          '--compare'], 90),
    ('RA-MoE fast path', ['ramoe', '--batch-size', '16', '--bf16'], 10),
    ('Evaluation metrics', ['eval', '--tasks', 'sevir', '--frames', '192'], 15),
    ('Data loaders', ['data', '--workers', '0', '4', '8'], 60),
    ('Training step with torch.compile, UniSTD vs TAU (Human3.6M)',
     ['train', '-c', 'configs/unistd/multi10.py', '--tasks', 'human', '--batch-size', '16', '--bf16', '--compile',
      '--compare', str(BASELINES[2]), '--warmup', '2', '--repeats', '5'], 150),
]
"""The GPU measurements of docs/performance.md in the order they run (what the speed issue's targets need
first: adapter overhead eager and compiled, the compiled batch-16 step with its MFU and peak memory),
each with the seconds it is expected to take on one H100/H200: the suite skips a part whose estimate
exceeds what is left of its ``--budget``."""

QUICK = {'--batch-size': '1', '--frames': '4', 'configs/unistd/multi10.py': 'configs/unistd/tiny_test.py',
         str(BASELINES[2]): str(ROOT / 'configs/baselines/demo_tau.py')}
"""``suite --quick``: the same commands at toy sizes (a CPU check that every part runs): tiny ViT, small TAU."""

QUICK_SECONDS = 20
"""Estimate of every part under ``--quick`` (the compile part, which compiles on the CPU: ten times as much)."""


def quick_argv(argv: list[str]) -> list[str]:
    out = [QUICK.get(arg, arg) if arg in ('configs/unistd/multi10.py', str(BASELINES[2])) else arg for arg in argv]
    out = [QUICK.get(prev, arg) if prev in QUICK and prev.startswith('--') else arg
           for prev, arg in zip([''] + out, out)]
    if out[0] == 'data':
        return out + ['--samples', '16', '--tasks', 'taxibj']
    out = [a for a in out if a != '--bf16']
    if out[0] in ('train', 'infer', 'adapters'):
        if out[-1] == '--compare':
            out.append(QUICK[str(BASELINES[2])])
        for option, value in (('--warmup', '0'), ('--repeats', '1')):
            if option in out:
                out[out.index(option) + 1] = value
            else:
                out += [option, value]
        if '--tasks' not in out:
            out += ['--tasks', 'human']
        else:
            i = out.index('--tasks')
            out = out[:i + 1] + ['human'] + [a for a in out[i + 1:] if a not in ('sevir', 'human')]
    elif out[0] == 'memory':
        out = [a for a in out if a != 'sevir']
    elif out[0] in ('ramoe', 'eval'):
        out = out + ['--warmup', '0', '--repeats', '1'] if out[0] == 'ramoe' else out + ['--repeats', '1']
    return out


def _out_of_time(signum, frame):
    from openstl_unistd.benchmarks.speed import OutOfTime

    raise OutOfTime('time budget reached')


def suite(args) -> None:
    """Every measurement of ``SUITE`` in one process; one markdown document on stdout (and in ``--out``).

    Time budget: a part runs only if its estimate fits in what is left of ``--budget`` seconds (else
    the document says it was skipped and why); a part still running when the budget ends is stopped
    (timer signal), the model/task rows it did not reach are noted, and the document is kept. A
    model that runs out of memory is a row, not a lost table.
    """
    import lightning
    import timm

    from openstl_unistd.benchmarks.speed import OutOfTime, free_memory

    device = device_of(args)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else (platform.processor() or platform.machine())
    parts = [f'## Measured on {name}, {datetime.date.today().isoformat()}', '',
             f'torch {torch.__version__} (CUDA {torch.version.cuda}), timm {timm.__version__}, '
             f'lightning {lightning.__version__}, Python {platform.python_version()}; '
             f'command: `python tools/benchmark.py {" ".join(sys.argv[1:])}`; time budget {args.budget:g} s', '']
    start = time.perf_counter()
    end = start + args.budget
    timer = hasattr(signal, 'setitimer') and threading.current_thread() is threading.main_thread()
    if timer:
        previous = signal.signal(signal.SIGALRM, _out_of_time)
    try:
        for index, (title, argv, estimate) in enumerate(SUITE):
            if args.quick:
                argv, estimate = quick_argv(list(argv)), QUICK_SECONDS * (10 if '--compile' in argv else 1)
            argv = list(argv)
            if args.device and argv[0] not in ('data', 'kernels'):
                argv += ['--device', args.device]
            command = f'`python tools/benchmark.py {" ".join(argv)}`'
            if argv[0] in ('train', 'infer'):
                argv += ['--deadline', repr(end)]
            left = end - time.perf_counter()
            began = time.perf_counter()
            if estimate > left:
                body = (f'Skipped: it needs about {estimate:g} s, and {max(left, 0):.0f} s of the {args.budget:g} s '
                        f'budget were left (`--budget` gives more): {command}')
            else:
                buffer = io.StringIO()
                shown, sys.argv = sys.argv, [sys.argv[0], *command.strip('`').split()[2:]]  # each table's own command
                try:
                    if timer:
                        signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
                    with contextlib.redirect_stdout(buffer):
                        main(argv)
                    body = buffer.getvalue().rstrip()
                except OutOfTime:
                    body = buffer.getvalue().rstrip() + '\n\nStopped: the time budget ended during this part.'
                except Exception:
                    body = buffer.getvalue() + '\nFAILED:\n' + traceback.format_exc(limit=3)
                finally:
                    sys.argv = shown
                    if timer:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    free_memory(device)
                    if '--compile' in argv:
                        torch._dynamo.reset()
            parts += [f'### {title} ({time.perf_counter() - began:.0f} s)', '', body, '']
            print('\n'.join(parts[-4:]), flush=True)
            if args.out:
                Path(args.out).write_text('\n'.join(parts) + '\n')
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    parts.append(f'Whole suite: {time.perf_counter() - start:.0f} s of a {args.budget:g} s budget.')
    print(parts[-1])
    if args.out:
        Path(args.out).write_text('\n'.join(parts) + '\n')


def main(argv=None) -> int:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    def common(sub, config=True):
        if config:
            sub.add_argument('-c', '--config', required=True)
            sub.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
        sub.add_argument('--tasks', nargs='+', help='tasks to time (default: the config\'s)')
        sub.add_argument('--batch-size', type=int, default=16)
        sub.add_argument('--device', help="'cuda' or 'cpu' (default: cuda when available)")
        sub.add_argument('--bf16', action='store_true', help='bf16 autocast')
        sub.add_argument('--warmup', type=int, default=3)
        sub.add_argument('--repeats', type=int, default=10)

    for name in ('train', 'infer'):
        sub = commands.add_parser(name, help=f'{name} step of the config\'s model (and of baselines with --compare)')
        common(sub)
        sub.add_argument('--compare', nargs='*', default=None, metavar='MODEL_CONFIG',
                         help='also time these model configs (default: the four baselines)')
        sub.add_argument('--no-sdpa', action='store_true', help='timm attention without scaled_dot_product_attention')
        sub.add_argument('--compile', action='store_true', help='torch.compile the models')
        sub.add_argument('--deadline', type=float, help=argparse.SUPPRESS)
        sub.set_defaults(run=models)
    sub = commands.add_parser('adapters', help='backbone step with and without RA-MoE and temporal modules')
    common(sub)
    sub.add_argument('--no-sdpa', action='store_true')
    sub.add_argument('--compile', action='store_true', help='compile the blocks as trainer.compile does')
    sub.set_defaults(run=adapters)
    sub = commands.add_parser('kernels', help='kernels per ViT block in a training step, eager and compiled; roofline')
    sub.add_argument('-c', '--config', required=True)
    sub.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    sub.add_argument('--task', help="the token grid of the roofline (default: the config's task with the most tokens)")
    sub.add_argument('--batch-size', type=int, default=16)
    sub.add_argument('--no-compile', action='store_true', help='skip the compiled counts')
    sub.add_argument('--json', action='store_true',
                     help='print only {"frozen", "full", "full_compiled", "roofline_ratio"} as JSON')
    sub.set_defaults(run=kernels)
    sub = commands.add_parser('memory', help='estimated peak memory of a training step per task (fake tensors, '
                                             'on the CPU), with and without checkpointing')
    common(sub)
    sub.add_argument('--measure', nargs='+', metavar='TASK',
                     help='also measure one real step of these tasks on --device (CUDA: max_memory_allocated)')
    sub.set_defaults(run=memory)
    sub = commands.add_parser('ramoe', help='RA-MoE adapter: per-expert loop vs stacked vs frozen ranks')
    common(sub, config=False)
    sub.add_argument('--tokens', type=int, default=576)
    sub.set_defaults(run=ramoe)
    sub = commands.add_parser('eval', help='metric throughput and the time of a whole test set')
    common(sub, config=False)
    sub.add_argument('--frames', type=int, default=48, help='frames per metric update')
    sub.set_defaults(run=evaluation)
    sub = commands.add_parser('data', help='samples per second of every paper loader on real-format fixtures')
    sub.add_argument('--tasks', nargs='+')
    sub.add_argument('--workers', nargs='+', type=int, default=[0, 2])
    sub.add_argument('--batch-size', type=int, default=16)
    sub.add_argument('--samples', type=int, default=256)
    sub.set_defaults(run=data)
    sub = commands.add_parser('ddp', help='DDP step with and without unused-parameter detection')
    common(sub)
    sub.add_argument('--world-size', type=int, default=2)
    sub.add_argument('--rounds', type=int, default=3, help='interleaved repetitions of the three measurements')
    sub.set_defaults(run=ddp)
    sub = commands.add_parser('suite', help='every GPU measurement of docs/performance.md, one markdown document')
    sub.add_argument('--out', help='also write the document to this file')
    sub.add_argument('--device', help="'cuda' or 'cpu' (default: cuda when available)")
    sub.add_argument('--quick', action='store_true', help='toy sizes: check on the CPU that every part runs')
    sub.add_argument('--budget', type=float, default=450,
                     help='seconds for the whole suite: parts that would overrun are skipped (default 450)')
    sub.set_defaults(run=suite)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
