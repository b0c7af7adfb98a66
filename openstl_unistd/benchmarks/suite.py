"""``tools/benchmark.py suite``: every GPU measurement of docs/performance.md in one process, as one
markdown document, within a time budget."""
from __future__ import annotations

import contextlib
import datetime
import io
import platform
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from .markdown import command_line, device_name
from .speed import OutOfTime, free_memory

PAPER_CONFIG = 'configs/unistd/multi10.py'
TAU_CONFIG = 'configs/_base_/models/tau.py'

Part = tuple[str, list[str], float]
"""A part of the suite: its title, the ``tools/benchmark.py`` arguments that measure it, and the seconds
it is expected to take on one H100/H200."""

SUITE: list[Part] = [
    ('Kernels per ViT block (counted on the CPU, fake tensors)', ['kernels', '-c', PAPER_CONFIG, '--no-compile'], 15),
    ('Adapter overhead on the frozen blocks, eager', ['adapters', '-c', PAPER_CONFIG, '--tasks', 'sevir', 'human',
                                                      '--batch-size', '16', '--bf16'], 30),
    ('Adapter overhead on the frozen blocks, compiled (trainer.compile)',
     ['adapters', '-c', PAPER_CONFIG, '--tasks', 'sevir', 'human', '--batch-size', '16', '--bf16', '--compile'], 150),
    ('Training step at batch 16, compiled (trainer.compile)',
     ['train', '-c', PAPER_CONFIG, '--tasks', 'sevir', 'human', '--batch-size', '16', '--bf16', '--compile',
      '--warmup', '2', '--repeats', '5'], 150),
    ('Training-step memory, estimated and measured', ['memory', '-c', PAPER_CONFIG, '--tasks', 'sevir', 'human',
                                                        '--batch-size', '16', '--bf16', '--measure', 'sevir',
                                                        'human'], 60),
    ('Training step, UniSTD vs the baselines', ['train', '-c', PAPER_CONFIG, '--tasks', 'sevir', 'human',
                                                 '--batch-size', '16', '--bf16', '--compare'], 120),
    ('Inference step, every paper task', ['infer', '-c', PAPER_CONFIG, '--batch-size', '16', '--bf16', '--compare'],
     90),
    ('RA-MoE fast path', ['ramoe', '--batch-size', '16', '--bf16'], 10),
    ('Evaluation metrics', ['eval', '--tasks', 'sevir', '--frames', '192'], 15),
    ('Data loaders', ['data', '--workers', '0', '4', '8'], 60),
    ('Training step with torch.compile, UniSTD vs TAU (Human3.6M)',
     ['train', '-c', PAPER_CONFIG, '--tasks', 'human', '--batch-size', '16', '--bf16', '--compile', '--compare',
      TAU_CONFIG, '--warmup', '2', '--repeats', '5'], 150),
]
"""The GPU measurements of docs/performance.md in the order they run (what the speed issue's targets need
first: adapter overhead eager and compiled, the compiled batch-16 step with its MFU and peak memory):
the suite skips a part whose estimate exceeds what is left of its budget."""

QUICK = {'--batch-size': '1', '--frames': '4', PAPER_CONFIG: 'configs/unistd/tiny_test.py',
         TAU_CONFIG: 'configs/baselines/demo_tau.py'}
"""``suite --quick``: the same commands at toy sizes (a CPU check that every part runs): tiny ViT, small TAU."""

QUICK_SECONDS = 20
"""Estimate of every part under ``--quick`` (the compile parts, which compile on the CPU: ten times as much)."""

NO_DEVICE = ('data', 'kernels')
"""Commands that run on the CPU whatever the suite's ``--device``."""


def quick_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` of a part at toy sizes: the tiny configs, batch 1, one warm-up-free repeat, Human3.6M's
    shape only (SEVIR's is too large for a CPU check), fp32 (CPU bf16 is slow), the data loaders of
    TaxiBJ alone on 16 samples."""
    out = [QUICK.get(arg, arg) if arg in (PAPER_CONFIG, TAU_CONFIG) else arg for arg in argv]
    out = [QUICK.get(prev, arg) if prev in QUICK and prev.startswith('--') else arg
           for prev, arg in zip([''] + out, out)]
    if out[0] == 'data':
        return out + ['--samples', '16', '--tasks', 'taxibj']
    out = [a for a in out if a != '--bf16']
    if out[0] in ('train', 'infer', 'adapters'):
        if out[-1] == '--compare':
            out.append(QUICK[TAU_CONFIG])
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
    elif out[0] == 'ramoe':
        out += ['--warmup', '0', '--repeats', '1']
    elif out[0] == 'eval':
        out += ['--repeats', '1']
    return out


def _out_of_time(signum, frame):
    raise OutOfTime('time budget reached')


def run_part(run: Callable[[list[str]], int], argv: list[str], seconds_left: float, timer: bool,
             device: torch.device) -> str:
    """What ``run(argv)`` prints, stopped by a timer signal after ``seconds_left``; a failure is noted with
    its traceback, not raised, so that the document goes on."""
    buffer = io.StringIO()
    try:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, max(seconds_left, 0.001))
        with contextlib.redirect_stdout(buffer):
            run(argv)
        return buffer.getvalue().rstrip()
    except OutOfTime:
        return buffer.getvalue().rstrip() + '\n\nStopped: the time budget ended during this part.'
    except Exception:
        return buffer.getvalue() + '\nFAILED:\n' + traceback.format_exc(limit=3)
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
        free_memory(device)
        if '--compile' in argv:
            torch._dynamo.reset()


def run_suite(run: Callable[[list[str]], int], device: torch.device, budget: float, command: str,
              device_option: Optional[str] = None, quick: bool = False, out: Optional[str] = None,
              parts: Sequence[Part] = SUITE) -> str:
    """Every part of ``parts`` through ``run`` (the command line's ``main``) in this process; returns the
    markdown document, printing each part as it ends and rewriting ``out`` after each.

    Time budget: a part runs only if its estimate fits in what is left of ``budget`` seconds (else the
    document says it was skipped and why); a part still running when the budget ends is stopped
    (timer signal), the model/task rows it did not reach are noted, and the document is kept. A model
    that runs out of memory is a row, not a lost table. ``device_option`` is passed on as ``--device``.
    """
    import lightning
    import timm

    lines = [f'## Measured on {device_name(device)}, {datetime.date.today().isoformat()}', '',
             f'torch {torch.__version__} (CUDA {torch.version.cuda}), timm {timm.__version__}, '
             f'lightning {lightning.__version__}, Python {platform.python_version()}; '
             f'command: `{command}`; time budget {budget:g} s', '']
    start = time.perf_counter()
    end = start + budget
    timer = hasattr(signal, 'setitimer') and threading.current_thread() is threading.main_thread()
    if timer:
        previous = signal.signal(signal.SIGALRM, _out_of_time)
    try:
        for title, argv, estimate in parts:
            if quick:
                argv, estimate = quick_argv(argv), QUICK_SECONDS * (10 if '--compile' in argv else 1)
            argv = list(argv)
            if device_option and argv[0] not in NO_DEVICE:
                argv += ['--device', device_option]
            if argv[0] in ('train', 'infer'):
                argv += ['--deadline', repr(end)]
            left = end - time.perf_counter()
            began = time.perf_counter()
            if estimate > left:
                body = (f'Skipped: it needs about {estimate:g} s, and {max(left, 0):.0f} s of the {budget:g} s '
                        f'budget were left (`--budget` gives more): `{command_line(argv)}`')
            else:
                body = run_part(run, argv, left, timer, device)
            lines += [f'### {title} ({time.perf_counter() - began:.0f} s)', '', body, '']
            print('\n'.join(lines[-4:]), flush=True)
            if out:
                Path(out).write_text('\n'.join(lines) + '\n')
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    lines.append(f'Whole suite: {time.perf_counter() - start:.0f} s of a {budget:g} s budget.')
    print(lines[-1])
    if out:
        Path(out).write_text('\n'.join(lines) + '\n')
    return '\n'.join(lines) + '\n'
