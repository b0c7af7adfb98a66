"""The copy-last-frame reference of the OpenSTL comparison (docs/openstl.md, "The comparison, measured"):
OpenSTL's own ``metric()`` on a run's saved test arrays, the last input frame repeated as the forecast.

    python configs/studies/openstl_demo/copy_last.py work/unistd/saved/demo_digits ...
"""
import sys
from pathlib import Path

import numpy as np

import openstl_unistd
from openstl.core.metrics import metric

openstl_unistd.register()  # OpenSTL's SSIM call, made to run under today's scikit-image (data_range 2)
for folder in map(Path, sys.argv[1:]):
    inputs, trues = np.load(folder / 'inputs.npy'), np.load(folder / 'trues.npy')  # (N, T, C, H, W)
    copies = np.repeat(inputs[:, -1:], trues.shape[1], axis=1)
    scores, line = metric(copies, trues, metrics=['mse', 'mae', 'ssim', 'psnr'])
    print(f'{folder}: {line}')
