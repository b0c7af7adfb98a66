"""The paper's tables from runs: our runs as rows, the published numbers beside them, and the difference.

    python tools/report.py work_dirs/multi10 work_dirs/tau_* --table 2
    python tools/report.py work_dirs/studies/demo --table runs --format csv --out demo.csv --figure demo.png
    python tools/report.py 'work_dirs/ablations/*' --table 4 --format latex

Each run is labelled from its own config (model, task set, ablation), runs of one config with different
seeds give mean ± std and n, and a run that cannot be used is one 'skipped:' line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openstl_unistd.engine.cli import run_tool
from openstl_unistd.engine.report import FORMATS, TABLE_CHOICES, build_report, render, save_figure


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', metavar='RUN_DIR_OR_GLOB',
                   help="work dirs of tools/train.py (a study's folder stands for its runs), globs, results.json files")
    p.add_argument('--table', default='runs', choices=TABLE_CHOICES,
                   help="the paper's Table 2, 3 (with 6), 4, 5 or 10, or 'runs': a plain table of any runs (default)")
    p.add_argument('--format', default='md', choices=FORMATS, help='markdown (default), CSV or a LaTeX table')
    p.add_argument('--out', help='write the table to this file (default: print it)')
    p.add_argument('--figure', help='also draw per-task bars of --metric, ours beside the paper\'s, into this PNG')
    p.add_argument('--metric', help="the figure's metric (default: the table's first; 'mse' for --table runs)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    report = build_report(args.runs, args.table)
    for problem in report.problems:
        print(f'skipped: {problem}', file=sys.stderr)
    for note in report.notes:
        print(f'note: {note}', file=sys.stderr)
    text = render(report.table, args.format)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f'table written to {args.out}', file=sys.stderr)
    else:
        print(text, end='')
    if args.figure:
        print(f'figure written to {save_figure(report, args.figure, args.metric)}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
