"""Forecast new data with a trained model: physical units in and out, any horizon.

    python tools/predict.py --ckpt work_dirs/demo/checkpoints/best.ckpt --task demo_traffic \
        --input past.npy --horizon 12 --out forecast.npy --figures --gif
    python tools/predict.py --ckpt unistd.safetensors --backbone-file ViT-B-16.pt --task rain \
        --input radar.nc --variable rain --time-dim time --out forecast.nc
    python tools/predict.py -c CONFIG --ckpt OLD.ckpt ...          # a checkpoint without model card (a file
                                                                   # with one ignores -c, with a warning)

Inputs: .npy/.npz (N, T, C, H, W) with T ≥ the task's input frames (the last T are used), or a
netCDF/zarr variable of dims (time, [channel], y, x). Output in the input's container, (N, K, C, H, W)
or the variable on the continued time axis. Horizons beyond the task's T' roll the model out: each
pass gets the last T frames of inputs and predictions so far. Inputs are checked as training checks
its data (dtype, shape, empty, NaN/Inf, unreadable files: one error line naming the file); a forecast
with NaN or ±Inf is an error (exit 1) and nothing is written.
"""
from __future__ import annotations

import argparse
import sys

from mmengine.config import DictAction

from openstl_unistd.engine.cli import run_tool
from openstl_unistd.errors import UserValueError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-c', '--config', help='config file, for checkpoints without a model card (ignored, with a '
                   'warning, for files with one)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None, help='override config keys')
    p.add_argument('--ckpt', required=True, help='checkpoint (.ckpt) or export (.safetensors)')
    p.add_argument('--backbone-file', help="an export's pretrained backbone weights (default: the recorded path)")
    p.add_argument('--data-root', help='datasets folder, for the scalings of a checkpoint without model card')
    p.add_argument('--task', required=True, help='the task to forecast')
    p.add_argument('--input', required=True, help='past frames in physical units: .npy, .npz, .nc or .zarr')
    p.add_argument('--key', help='array name inside an .npz')
    p.add_argument('--variable', help='netCDF/zarr variable (default: the only one)')
    p.add_argument('--time-dim', default='time', help='netCDF/zarr time dimension (default: time)')
    p.add_argument('--channel-dim', help='netCDF/zarr channel dimension, if any')
    p.add_argument('--horizon', type=int, help="frames to forecast, K (default: the task's T')")
    p.add_argument('--out', required=True, help='forecast file: .npy, .npz (from arrays), .nc or .zarr (from xarray)')
    p.add_argument('--batch-size', type=int, default=16, help='samples per forward pass')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1' (a device torch has here), or 'auto'")
    p.add_argument('--precision', default='32', help="'32', '64', 'bf16-mixed' or '16-mixed'")
    p.add_argument('--figures', nargs='?', type=int, const=-1, default=None, metavar='N',
                   help='PNG strip (inputs, forecast) per sample, of the first N samples when given')
    p.add_argument('--gif', nargs='?', type=int, const=-1, default=None, metavar='N',
                   help='animated GIF per sample, of the first N samples when given')
    p.add_argument('--figures-dir', help='folder of figures and GIFs (default: <out>_figures)')
    p.add_argument('--save-openstl', metavar='DIR', help="also write OpenSTL's DIR/saved/{inputs,preds,trues}.npy")
    p.add_argument('--quiet', action='store_true', help='no progress line')
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.cfg_options and not args.config:
        raise UserValueError('--cfg-options need -c/--config')
    from openstl_unistd.inference.forecast_io import forecast_file
    from openstl_unistd.inference.predictor import check_device
    from openstl_unistd.engine.loading import load_predictor

    device = check_device(args.device, '--device')
    predictor = load_predictor(args.ckpt, args.config, cfg_options=args.cfg_options, backbone_file=args.backbone_file,
                           device=device, data_root=args.data_root)
    run = forecast_file(predictor, args.task, args.input, args.out, args.horizon, batch_size=args.batch_size,
                        precision=args.precision, progress=not args.quiet, key=args.key, variable=args.variable,
                        time_dim=args.time_dim, channel_dim=args.channel_dim, figures=args.figures, gifs=args.gif,
                        figures_dir=args.figures_dir, openstl_dir=args.save_openstl)
    print(f'forecast {run.shape} (N, K, C, H, W) written to {run.out}')
    if run.figures:
        print(f'{len(run.figures)} figures in {run.figures[0].parent}')
    if run.openstl:
        print(f"OpenSTL layout in {run.openstl}")
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
