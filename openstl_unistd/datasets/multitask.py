"""Datasets of several tasks behind one index, and the collation of single-task batches."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.utils.data import Dataset


class MultiTaskDataset(Dataset):
    """``dataset[(task, index)]`` → ``{'x': (T, C, H, W), 'y': (T', C, H, W), 'task': task}``.

    Indexed by the pairs that :class:`~.sampler.MultiTaskBatchSampler` yields.
    """

    def __init__(self, datasets: Mapping[str, Dataset]) -> None:
        self.datasets = dict(datasets)

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(dataset) for name, dataset in self.datasets.items()}

    def __len__(self) -> int:
        return sum(self.sizes.values())

    def __getitem__(self, key: tuple[str, int]) -> dict:
        task, index = key
        x, y = self.datasets[task][index]
        return {'x': x, 'y': y, 'task': task}


class TaskSamples(Dataset):
    """One task's dataset with its samples labelled by task name (evaluation loaders)."""

    def __init__(self, dataset: Dataset, task: str) -> None:
        self.dataset = dataset
        self.task = task

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        x, y = self.dataset[index]
        return {'x': x, 'y': y, 'task': self.task}


def sequential_task_batches(sizes: Mapping[str, int], batch_size: int) -> list[list[tuple[str, int]]]:
    """Every sample of every task once, task after task, in batches that never mix tasks."""
    return [[(task, i) for i in range(start, min(start + batch_size, size))]
            for task, size in sizes.items() for start in range(0, size, batch_size)]


def collate_task_batch(samples: Sequence[dict]) -> dict:
    """Stack samples of one task: ``{'x': (B, T, C, H, W), 'y': (B, T', C, H, W), 'task': str}``."""
    tasks = {s['task'] for s in samples}
    if len(tasks) != 1:
        raise ValueError(f'a batch must hold one task, got {sorted(tasks)}')
    return {
        'x': torch.stack([s['x'] for s in samples]),
        'y': torch.stack([s['y'] for s in samples]),
        'task': tasks.pop(),
    }
