"""Run a study: the runs of a study config (configs × variants × seeds), the missing ones in order, then its report.

    python tools/study.py -c configs/studies/demo.py                  # run what is missing, write report.md/.png
    python tools/study.py -c configs/studies/paper_table2.py --plan   # list the runs, their status and cost
    python tools/study.py -c configs/studies/paper_table4.py --only 'no_temporal-*' --data-root /data

Each run trains as its own tools/train.py process in <study folder>/<run>/ (output in its train.log):
a finished run is skipped, an interrupted one resumes from its last checkpoint. configs/studies/ and
docs/studies.md describe the study configs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from openstl_unistd.engine.cli import run_tool
from openstl_unistd.engine.study import describe_plan, load_study, plan, run_study

TRAIN_SCRIPT = Path(__file__).resolve().parent / 'train.py'


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-c', '--config', required=True, help='study config (configs/studies/*.py)')
    p.add_argument('--work-dir', help="the study's folder (default: the study's work_dir, else "
                                      'work_dirs/studies/<study name>)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='override config keys of every run, e.g. trainer.max_epochs=1')
    p.add_argument('--only', nargs='+', metavar='RUN', help='only the runs whose names match these globs')
    p.add_argument('--data-root', help='folder holding the datasets (passed to every run)')
    p.add_argument('--plan', action='store_true', help='list the runs, what would be done and their cost; run nothing')
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    study = load_study(args.config, args.work_dir, args.cfg_options)
    if args.plan:
        print(describe_plan(plan(study, args.only), study.table))
        return 0
    outcome = run_study(study, TRAIN_SCRIPT, args.only, args.data_root)
    print(f'study {study.folder}: {len(outcome.trained)} run(s) trained, {len(outcome.failed)} failed, '
          f'{sum(s.status == "done" for s in outcome.statuses)} already done; {outcome.seconds / 60:.1f} min',
          file=sys.stderr)
    return 1 if outcome.failed else 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
