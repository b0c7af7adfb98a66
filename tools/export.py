"""Export the trained part of a model: task ends, adapters, routers, ranks, temporal modules.

    python tools/export.py --ckpt work_dirs/multi10/checkpoints/best.ckpt --out unistd_multi10.safetensors

The .safetensors file holds what training changed and, in its metadata, the task specs, scalings,
model and method options, the backbone's identity (scheme, timm name, SHA-256 of its weights file,
or the seed of a random one) and the SHA-256 of its tensors and of that card. Loading the export
(tools/predict.py, load_predictor, init_from) refuses it when either hash differs. The frozen backbone is
not stored: a pretrained one is read from its file (refused with another hash), a random one derived
again from its seed and checked by the hash of its weights. A backbone that training changed, or a
random one its seed does not give (drawn before seeds were recorded), is stored.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from openstl_unistd.engine.cli import run_tool
from openstl_unistd.errors import UserValueError


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
        from openstl_unistd.engine.loading import load_predictor

        card = load_predictor(args.ckpt, args.config, cfg_options=args.cfg_options, data_root=args.data_root).card
        if card.backbone is None and source.card is None:
            from openstl_unistd.inference.model_card import backbone_record

            card = card.replace(backbone=backbone_record(card.model))
    elif args.cfg_options:
        raise UserValueError('--cfg-options need -c/--config')
    summary = export_model(source, args.out, args.backbone_file, card=card)
    size = Path(args.ckpt).stat().st_size
    backbone = {'stored': 'stored (trained, or random and not from its seed)',
                'seed': 'not stored (derived again from its seed, checked by hash)',
                'file': 'not stored (restored from its file)', 'none': 'none (the model has none)'}[summary.backbone]
    print(f'{summary.path}: {summary.tensors} tensors, {summary.elements / 1e6:.3f}M values, '
          f'{summary.path.stat().st_size / 2**20:.2f} MiB (checkpoint {size / 2**20:.2f} MiB); backbone {backbone}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
