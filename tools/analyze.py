"""Parameter counts and per-task output shapes of a config's model, without data or weights;
with --compare, the trainable parameters and per-task G-MACs of baselines at the same tasks.

    python tools/analyze.py -c configs/unistd/multi10.py
    python tools/analyze.py -c configs/unistd/multi10.py --compare          # paper Tables 7 and 9
    python tools/analyze.py -c configs/unistd/multi10.py --json             # one JSON object on stdout
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmengine.config import DictAction

from openstl_unistd.engine.analysis import BASELINE_MODELS, comparison_report, figures_report, model_report
from openstl_unistd.engine.cli import run_tool
from openstl_unistd.engine.config import load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-c', '--config', required=True, help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.lora.max_rank=4')
    parser.add_argument('--batch-size', type=int, default=1, help='batch size of the printed shapes')
    parser.add_argument('--compare', nargs='*', default=None, metavar='MODEL_CONFIG',
                        help='model configs to compare with (default: the baselines in configs/_base_/models)')
    parser.add_argument('--no-flops', action='store_true', help='parameters and shapes only, no G-MACs')
    parser.add_argument('--json', action='store_true',
                        help='print only a JSON object: parameters and per task input, output, token_grid, passes, '
                             'gmacs (and "baselines" with --compare)')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    others = []
    if args.compare is not None:
        models_dir = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'models'
        others = args.compare or [models_dir / f'{name}.py' for name in BASELINE_MODELS]
    if args.json:
        print(json.dumps(figures_report(cfg, others, flops=not args.no_flops), indent=2))
        return 0
    print(model_report(cfg, args.batch_size))
    if args.compare is not None:
        print()
        print(comparison_report(cfg, others, flops=not args.no_flops))
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
