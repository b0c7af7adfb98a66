"""What every benchmark prints: a header line (device, versions, command) and markdown tables."""
from __future__ import annotations

import platform
from typing import Sequence

import torch

TOOL = 'python tools/benchmark.py'
"""How the command line is called in headers, so that a table can be measured again."""

HIDDEN_OPTIONS = ('--deadline',)
"""Options (each with one value) that the suite adds for its own bookkeeping, left out of headers."""


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's."""
    return torch.cuda.get_device_name(device) if device.type == 'cuda' else (platform.processor() or platform.machine())


def command_line(argv: Sequence[str]) -> str:
    """``python tools/benchmark.py ARGV`` less :data:`HIDDEN_OPTIONS`."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in HIDDEN_OPTIONS:
            skip = True
        else:
            shown.append(str(arg))
    return ' '.join([TOOL, *shown])


def header(device: torch.device, command: str) -> str:
    """``device: …; torch …; command: …``: the first line of every benchmark's output."""
    return (f'device: {device.type} ({device_name(device)}), {torch.get_num_threads()} CPU threads; '
            f'torch {torch.__version__}; command: {command}')


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table of ``rows`` with ``(key, title, format)`` columns; a missing value is ``-``, a
    value that is not a number (``out of memory``) is printed as it is."""
    lines = ['| ' + ' | '.join(title for _, title, _ in columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        cells = [format(row[key], fmt) if isinstance(row.get(key), (int, float)) else str(row.get(key, '-'))
                 for key, _, fmt in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
