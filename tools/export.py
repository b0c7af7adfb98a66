"""Export the trained part of a model: task ends, adapters, routers, ranks, temporal modules.

    python tools/export.py --ckpt work_dirs/multi10/checkpoints/best.ckpt --out unistd_multi10.safetensors

The .safetensors file holds what training changed and, in its metadata, the task specs, scalings,
model and method options and the backbone's identity (scheme, timm name, SHA-256 of its weights
file). The frozen backbone is not stored: loading the export (tools/predict.py, load_model) reads it
from that file and refuses a file with another hash. A randomly initialized backbone is stored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from openstl_unistd.engine.cli import run_tool


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='a checkpoint of tools/train.py')
    p.add_argument('--out', required=True, help='the export, FILE.safetensors')
    p.add_argument('--backbone-file', help='the pretrained weights file, if not at the path recorded at training')
    p.add_argument('-c', '--config', help='config file, for checkpoints without a model card (ignored, with a '
                   'warning, for files with one)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None, help='override config keys')
    p.add_argument('--data-root', help='datasets folder, for the scalings of a checkpoint without model card')
    args = p.parse_args(argv)
    from openstl_unistd.inference.export import export_model
    from openstl_unistd.inference.model_files import read_model_file

    source = read_model_file(args.ckpt)
    card = None
    if args.config:
        from openstl_unistd.engine.loading import load_model

        card = load_model(args.ckpt, args.config, cfg_options=args.cfg_options, data_root=args.data_root).card
        if card.backbone is None and source.card is None:
            from openstl_unistd.inference.model_card import backbone_record

            card = card.replace(backbone=backbone_record(card.model))
    elif args.cfg_options:
        raise ValueError('--cfg-options need -c/--config')
    summary = export_model(source, args.out, args.backbone_file, card=card)
    size = Path(args.ckpt).stat().st_size
    backbone = 'stored (randomly initialized)' if summary.backbone_stored else 'not stored (restored from its file)'
    print(f'{summary.path}: {summary.tensors} tensors, {summary.elements / 1e6:.3f}M values, '
          f'{summary.path.stat().st_size / 2**20:.2f} MiB (checkpoint {size / 2**20:.2f} MiB); backbone {backbone}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
