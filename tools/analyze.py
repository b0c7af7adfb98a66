"""Parameter counts and per-task output shapes of a config's model, without data or weights.

    python tools/analyze.py -c configs/unistd/multi10.py
"""
from __future__ import annotations

import argparse
import sys

from mmengine.config import DictAction

from openstl_unistd.utils.analysis import model_report
from openstl_unistd.utils.cli import run_tool
from openstl_unistd.utils.config import load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-c', '--config', required=True, help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.lora.max_rank=4')
    parser.add_argument('--batch-size', type=int, default=1, help='batch size of the printed shapes')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(model_report(cfg, args.batch_size))
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
