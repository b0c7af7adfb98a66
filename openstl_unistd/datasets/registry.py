"""Which loader reads which task, and building a task's dataset from config options."""
from __future__ import annotations

import importlib
import inspect
from typing import Mapping, Optional

from ..errors import UserValueError, check_known_keys
from ..tasks import TaskSpec
from .base import ForecastDataset, PathLike
from .checks import DataError, EmptySplitError

LOADERS: dict[str, str] = {
    'taxibj': 'taxibj:TaxiBJ',
    'mmnist': 'moving_mnist:MovingMNIST',
    'kth': 'kth:KTH',
    'kitti': 'kitti:KITTI',
    'human': 'human:Human36M',
    'bair': 'bair:BAIR',
    'cityscapes': 'cityscapes:Cityscapes',
    'traffic4cast': 'traffic4cast:Traffic4Cast',
    'sevir': 'sevir:SEVIR',
    'enso': 'enso:ENSO',
    'demo_digits': 'demo:DemoDigits',
    'demo_advection': 'demo:DemoAdvection',
    'demo_traffic': 'demo:DemoTraffic',
    'demo_wave': 'demo:DemoWave',
    'arrays': 'custom:ArrayTask',
    'xarray': 'custom:XarrayTask',
}
"""Loader of each known task name, and of the generic ``arrays``/``xarray`` types (module:class)."""


def loader_class(name: str) -> type[ForecastDataset]:
    """The loader class registered as ``name`` (imported on demand)."""
    if name not in LOADERS:
        raise UserValueError(f'no loader for {name!r}; known loaders: {sorted(LOADERS)} '
                             "(a custom task sets type='arrays' or type='xarray')")
    module, cls = LOADERS[name].split(':')
    return getattr(importlib.import_module(f'{__package__}.{module}'), cls)


def build_dataset(spec: TaskSpec, split: str, data_root: PathLike, options: Optional[Mapping] = None) -> ForecastDataset:
    """The ``split`` dataset of task ``spec`` with its T → T' and the loader ``options`` of the config.

    ``options['type']`` picks a loader other than the task's own (e.g. ``'arrays'``). The loader's
    frame shape must match the task's ``(C, H, W)``, and the split must hold at least one sample.
    Errors about the data (``DataError``) are prefixed with the task and split.
    """
    options = dict(options or {})
    name = options.pop('type', spec.name)
    cls = loader_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    check_known_keys(options, [k for k in accepted if k not in ('self', 'data_root', 'split', 'input_frames',
                                                                 'output_frames')],
                     f"task '{spec.name}': data options of loader {name!r}")
    try:
        dataset = cls(data_root, split, input_frames=spec.input_frames, output_frames=spec.output_frames, **options)
    except DataError as error:
        error.args = (f"task '{spec.name}', split '{split}': {error}",)
        raise
    dataset.task_name = spec.name
    expected = (spec.channels, spec.height, spec.width)
    if tuple(dataset.frame_shape) != expected:
        raise UserValueError(f"task '{spec.name}': loader {name!r} gives frames (C, H, W) = {tuple(dataset.frame_shape)}, "
                             f'the task expects {expected}')
    if len(dataset) == 0:
        raise EmptySplitError(
            f"task '{spec.name}', split '{split}': no samples in {dataset.source or data_root} (loader {name!r}): "
            'the split is empty, or none of its sequences holds input_frames + output_frames = '
            f"{spec.input_frames} + {spec.output_frames} frames; check the split's files and bounds "
            "and the task's frames")
    return dataset
