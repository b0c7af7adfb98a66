"""Loader throughput: samples per second of every paper loader on fixtures in the real formats.

Each fixture is tiny (a few sequences at the real frame size), so samples are drawn with
replacement until enough have been read; the OS file cache is warm after the first pass, which
is what a long training run sees for data that fits in memory.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, RandomSampler

from ..datasets.fixtures.bair import write_bair_tfrecord
from ..datasets.fixtures.cityscapes import write_cityscapes
from ..datasets.fixtures.enso import write_enso
from ..datasets.fixtures.human import write_human
from ..datasets.fixtures.kitti import write_kitti
from ..datasets.fixtures.kth import write_kth
from ..datasets.fixtures.moving_mnist import write_moving_mnist
from ..datasets.fixtures.sevir import write_sevir_earthformer
from ..datasets.fixtures.taxibj import write_taxibj_openstl
from ..datasets.fixtures.traffic4cast import write_traffic4cast
from ..datasets.registry import build_dataset
from ..tasks import PAPER_TASKS

FIXTURES: dict[str, tuple[Callable, dict]] = {
    'taxibj': (write_taxibj_openstl, {}),
    'traffic4cast': (write_traffic4cast, {}),
    'mmnist': (write_moving_mnist, {'num_train_sequences': 1000}),
    'bair': (write_bair_tfrecord, {}),
    'human': (write_human, {}),
    'kth': (write_kth, {}),
    'cityscapes': (write_cityscapes, {}),
    'kitti': (write_kitti, {}),
    'sevir': (write_sevir_earthformer, {}),
    'enso': (write_enso, dict(cmip6_models=2, cmip6_years=5, cmip5_models=4, cmip5_years=4)),
}
"""Per paper task: the fixture writer (default arguments) and the loader options that read it."""


def samples_per_second(dataset, batch_size: int, workers: int, samples: int) -> float:
    """Median-free throughput of one timed pass of ``samples`` samples after one warm-up batch."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=samples + batch_size,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        persistent_workers=False)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    count = sum(x.shape[0] for x, _ in iterator)
    return count / (time.perf_counter() - start)


def benchmark_loaders(root: Path, tasks: Sequence[str] = tuple(FIXTURES), workers: Sequence[int] = (0, 2),
                      batch_size: int = 16, samples: int = 128) -> list[dict]:
    """Write each task's fixture under ``root``, then time its training split for each worker count."""
    rows = []
    for name in tasks:
        writer, options = FIXTURES[name]
        folder = root / name
        writer(folder)
        dataset = build_dataset(PAPER_TASKS[name], 'train', folder, options)
        row = {'task': name, 'sample_shape': tuple(PAPER_TASKS[name].input_shape)}
        for count in workers:
            row[f'workers={count}'] = samples_per_second(dataset, batch_size, count, samples)
        rows.append(row)
    return rows
