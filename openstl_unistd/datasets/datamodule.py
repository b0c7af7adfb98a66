"""The LightningDataModule of joint training: per-task datasets, one-task batches, per-task evaluation."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import UserValueError
from ..core.scaling import Scaling
from ..tasks import KNOWN_TASKS, TaskSpec
from .base import ForecastDataset, PathLike
from .multitask import MultiTaskDataset, TaskSamples, collate_task_batch, sequential_task_batches
from .options import DataOptions
from .registry import build_dataset
from .sampler import MultiTaskBatchSampler, Sampling, ShardSampler


class MultiTaskDataModule(L.LightningDataModule):
    """Datasets of ``tasks`` under ``data_root``, read by the loaders of ``datasets`` options.

    Training batches come from :class:`MultiTaskBatchSampler` (it does its own DDP split, so the
    trainer must run with ``use_distributed_sampler=False``). Validation and test give one loader
    per task, in task order: ``dataloader_idx`` ``i`` is ``task_names[i]``; under DDP each rank reads
    a contiguous, disjoint part of every task (:class:`ShardSampler`, no padding).

    Args:
        tasks: the task specs (shapes, T → T').
        data_root: folder holding the datasets in their public layouts.
        datasets: per-task loader options, e.g. ``{'taxibj': {'format': 'predbench'}}``; options of known
            tasks that are not in ``tasks`` are ignored (configs inherit them), others are an error.
        batch_size, val_batch_size: per-rank batch sizes.
        num_workers: DataLoader workers (persistent when > 0; memory pinned on GPU runs).
        sampling, seed, steps_per_epoch: see :class:`MultiTaskBatchSampler`.

    Defaults are those of the config's ``data`` section (:class:`~.options.DataOptions`).
    """

    def __init__(self, tasks: Sequence[TaskSpec], data_root: PathLike, datasets: Optional[Mapping] = None,
                 batch_size: int = DataOptions.batch_size, val_batch_size: Optional[int] = DataOptions.val_batch_size,
                 num_workers: int = DataOptions.num_workers, sampling: Sampling = DataOptions.sampling,
                 seed: int = DataOptions.seed, steps_per_epoch: Optional[int] = DataOptions.steps_per_epoch,
                 pin_memory: bool = DataOptions.pin_memory) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.data_root = data_root
        options = dict(datasets or {})
        unknown = sorted(set(options) - set(self.task_names) - set(KNOWN_TASKS))
        if unknown:
            raise UserValueError(f'data options given for task(s) {unknown} that are neither in the task list '
                                 f'{self.task_names} nor known tasks')
        self.dataset_options = {name: options[name] for name in self.task_names if name in options}
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.sampling = sampling
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.pin_memory = pin_memory
        self.splits: dict[str, dict[str, ForecastDataset]] = {}
        self.train_sampler: Optional[MultiTaskBatchSampler] = None
        self._sampler_state: Optional[dict] = None

    def build_split(self, split: str) -> dict[str, ForecastDataset]:
        """Every task's ``split`` dataset; missing data of all tasks reported in one error."""
        return self.check_available((split,))[split]

    def check_available(self, splits=('train', 'val', 'test')) -> dict[str, dict[str, ForecastDataset]]:
        """Build every task's datasets of ``splits``; one ``FileNotFoundError`` lists all that are missing,
        each with its expected path and its ``tools/prepare_data`` script."""
        missing: dict[str, list[str]] = {}
        for split in splits:
            if split in self.splits:
                continue
            datasets = {}
            for spec in self.tasks:
                try:
                    datasets[spec.name] = build_dataset(spec, split, self.data_root, self.dataset_options.get(spec.name))
                except FileNotFoundError as error:
                    missing.setdefault(str(error), []).append(split)
            if len(datasets) == len(self.tasks):
                self.splits[split] = datasets
        if missing:
            lines = [f'  - {message} [{", ".join(found_in)}]' for message, found_in in missing.items()]
            raise FileNotFoundError(f'{len(missing)} dataset file(s) missing under data_root={str(self.data_root)!r} '
                                    f'for tasks {self.task_names}:\n' + '\n'.join(lines))
        return {split: self.splits[split] for split in splits}

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, 'fit'):
            self.build_split('train')
            self.build_split('val')
        if stage in (None, 'validate'):
            self.build_split('val')
        if stage in (None, 'test', 'predict'):
            self.build_split('test')

    def _distribution(self) -> tuple[int, int]:
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        return 0, 1

    def _loader(self, dataset, **kwargs) -> DataLoader:
        workers = self.num_workers
        return DataLoader(dataset, num_workers=workers, collate_fn=collate_task_batch,
                          pin_memory=self.pin_memory and self._on_gpu(), persistent_workers=workers > 0, **kwargs)

    def _on_gpu(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == 'cuda'

    def train_dataloader(self) -> DataLoader:
        datasets = self.build_split('train')
        rank, world_size = self._distribution()
        self.train_sampler = MultiTaskBatchSampler(
            {name: len(d) for name, d in datasets.items()}, self.batch_size, self.sampling, self.seed,
            rank, world_size, self.steps_per_epoch)
        if self._sampler_state is not None:
            self.train_sampler.load_state_dict(self._sampler_state)
            self._sampler_state = None
        return self._loader(MultiTaskDataset(datasets), batch_sampler=self.train_sampler)

    def _evaluation_loaders(self, split: str) -> list[DataLoader]:
        rank, world_size = self._distribution()
        return [self._loader(TaskSamples(dataset, name), batch_size=self.val_batch_size,
                             sampler=ShardSampler(len(dataset), rank, world_size))
                for name, dataset in self.build_split(split).items()]

    def joint_loader(self, split: str, dataset: Optional[MultiTaskDataset] = None) -> DataLoader:
        """One loader over every task's ``split`` data, task after task, batches never mixing tasks
        (for frameworks that take a single evaluation loader, such as OpenSTL)."""
        dataset = dataset or MultiTaskDataset(self.build_split(split))
        return self._loader(dataset, batch_sampler=sequential_task_batches(dataset.sizes, self.val_batch_size))

    def val_dataloader(self) -> list[DataLoader]:
        return self._evaluation_loaders('val')

    def test_dataloader(self) -> list[DataLoader]:
        return self._evaluation_loaders('test')

    def scaling(self, task: str, split: str = 'test') -> Scaling:
        """The :class:`~openstl_unistd.core.scaling.Scaling` of a task's ``split`` dataset (its loader's)."""
        return self.build_split(split)[task].scaling

    def metric_options(self, task: str, split: str = 'test') -> dict:
        """``scaling`` and ``data_range`` of a task's ``split`` for its metrics: ``data_range`` is the split's
        range in model units for fields (the field convention of docs/metrics.md), else ``None``."""
        dataset = self.build_split(split)[task]
        field = getattr(dataset, 'metric_convention', 'image') == 'field'
        return {'scaling': dataset.scaling, 'data_range': dataset.data_range if field else None}

    def train_mean(self, task: str, max_samples: int = 512) -> torch.Tensor:
        """The per-pixel mean ``(C, H, W)`` of a task's training frames (inputs and targets), in model range:
        the "predict the training mean" baseline. Over at most ``max_samples`` samples, evenly spaced."""
        dataset = self.build_split('train')[task]
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(max_samples, len(dataset))).round().astype(int))
        total = None
        for index in picks:
            x, y = dataset[int(index)]
            frames = torch.cat([x, y]).double().sum(dim=0)
            total = frames if total is None else total + frames
        return (total / (len(picks) * dataset.total_frames)).float()

    def state_dict(self) -> dict:
        """The training sampler's position, saved in Lightning checkpoints.

        While fitting (training or validating within an epoch) it is the number of batches the
        training loop has processed in the current epoch (workers draw batches ahead, so the
        sampler's own count runs ahead of the loop).
        """
        if self.train_sampler is None:
            return {}
        state = self.train_sampler.state_dict()
        if self.trainer is not None and self.trainer.state.fn == 'fit':
            state = {'epoch': self.trainer.current_epoch,
                     'step': self.trainer.fit_loop.epoch_loop.batch_progress.current.processed}
        return {'sampler': state}

    def load_state_dict(self, state: dict) -> None:
        if 'sampler' in state:
            self._sampler_state = dict(state['sampler'])
            if self.train_sampler is not None:
                self.train_sampler.load_state_dict(self._sampler_state)
