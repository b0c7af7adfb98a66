"""Train a model on the tasks of a config, then test every task and print one metrics table.

    python tools/train.py -c configs/unistd/multi10.py --data-root data --devices 8 --precision bf16-mixed
    python tools/train.py -c configs/unistd/multi10.py --resume            # continue from checkpoints/last.ckpt
    python tools/train.py -c configs/unistd/demo.py --overwrite            # replace the work dir's earlier run
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openstl_unistd.engine.cli import ConfigOptions, devices_option, run_tool
from openstl_unistd.engine.config import load_config
from openstl_unistd.engine.experiment import default_work_dir, train
from openstl_unistd.errors import UserValueError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-c', '--config', required=True, help='config file')
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions, default=None,
                   help='override config keys, e.g. optim.lr=1e-3 data.batch_size=8 model.lora="dict(max_rank=4)"')
    p.add_argument('--work-dir', help='output folder (default: work_dirs/<config name>)')
    p.add_argument('--data-root', help='folder holding the datasets (overrides data.data_root)')
    p.add_argument('--devices', help="devices per node: a number, 'auto' or a list like 0,1")
    p.add_argument('--num-nodes', type=int, help='number of nodes')
    p.add_argument('--precision', help="'32', 'bf16-mixed' or '16-mixed'")
    p.add_argument('--resume', nargs='?', const='last', default=None,
                   help='resume from a checkpoint (default: <work-dir>/checkpoints/last.ckpt)')
    p.add_argument('--overwrite', action='store_true',
                   help="replace an earlier run's checkpoints, logs and results in the work dir (without it such a "
                        'work dir is refused unless --resume)')
    p.add_argument('--seed', type=int, help='global seed (overrides the config)')
    p.add_argument('--no-test', action='store_true', help='do not test after training')
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    devices = devices_option(args.devices)
    cfg = load_config(args.config, args.cfg_options)
    if args.seed is not None:
        cfg.seed = args.seed
    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir(args.config)
    resume = args.resume
    if resume is not None and args.overwrite:
        raise UserValueError('--resume continues the run in the work dir and --overwrite replaces it: give one of them')
    if resume == 'last':
        resume = str(work_dir / 'checkpoints' / 'last.ckpt')
    if resume is not None and not Path(resume).is_file():
        raise FileNotFoundError(f'--resume: checkpoint {resume!r} not found')
    train(cfg, work_dir, data_root=args.data_root, resume=resume, test_after=not args.no_test, overwrite=args.overwrite,
          devices=devices, num_nodes=args.num_nodes, precision=args.precision)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
