"""Benchmarks (figures for docs/performance.md, never pass/fail tests).

    python tools/benchmark.py data [--workers 0 2 4] [--batch-size 16] [--samples 256]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch

from openstl_unistd.utils.cli import run_tool


def data(args) -> None:
    from openstl_unistd.benchmarks.data import FIXTURES, benchmark_loaders

    tasks = args.tasks or list(FIXTURES)
    with tempfile.TemporaryDirectory() as root:
        rows = benchmark_loaders(Path(root), tasks, args.workers, args.batch_size, args.samples)
    print(f'loader throughput, samples/s (batch {args.batch_size}, {args.samples} samples; '
          f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})')
    header = ['task', 'sample (T, C, H, W)'] + [f'workers={w}' for w in args.workers]
    print(' | '.join(header))
    print(' | '.join('---' for _ in header))
    for row in rows:
        print(' | '.join([row['task'], str(row['sample_shape'])] + [f"{row[f'workers={w}']:.0f}" for w in args.workers]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    loader = commands.add_parser('data', help='samples per second of every paper loader on real-format fixtures')
    loader.add_argument('--tasks', nargs='+', help='paper tasks to time (default: all ten)')
    loader.add_argument('--workers', nargs='+', type=int, default=[0, 2], help='DataLoader worker counts')
    loader.add_argument('--batch-size', type=int, default=16)
    loader.add_argument('--samples', type=int, default=256, help='samples timed per measurement')
    loader.set_defaults(run=data)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
