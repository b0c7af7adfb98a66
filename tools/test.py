"""Test a checkpoint on every task of a config: per-task metrics table, results.json, figures.

    python tools/test.py -c configs/unistd/multi10.py --ckpt work_dirs/multi10/checkpoints/best.ckpt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openstl_unistd.engine.cli import ConfigOptions, devices_option, run_tool
from openstl_unistd.engine.config import load_config
from openstl_unistd.engine.experiment import default_work_dir, test


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-c', '--config', required=True, help='config file')
    p.add_argument('--ckpt', required=True, help='checkpoint to test')
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions, default=None, help='override config keys')
    p.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    p.add_argument('--data-root', help='folder holding the datasets (overrides data.data_root)')
    p.add_argument('--devices', help="devices per node: a number, 'auto' or a list like 0,1")
    p.add_argument('--precision', help="'32', 'bf16-mixed' or '16-mixed'")
    p.add_argument('--save-preds', nargs='?', type=int, const=-1, default=None,
                   help='save inputs/targets/predictions of N test samples per task (all when N is omitted)')
    args = p.parse_args(argv)
    devices = devices_option(args.devices)
    cfg = load_config(args.config, args.cfg_options)
    if args.save_preds is not None:
        cfg.setdefault('evaluation', {})
        cfg.evaluation.save_preds = args.save_preds if args.save_preds >= 0 else 10 ** 9
    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir(args.config)
    test(cfg, args.ckpt, work_dir, data_root=args.data_root, devices=devices, precision=args.precision)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
