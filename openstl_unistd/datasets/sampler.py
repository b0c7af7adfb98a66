"""Samplers of joint training and sharded evaluation.

Training (:class:`MultiTaskBatchSampler`): one task per batch, the same task on every rank.

The batch at step ``s`` of epoch ``e`` is a pure function of ``(seed, e, s)``: the task comes from
a categorical draw with a generator seeded by ``(seed, e)``, shared by all ranks; the samples
come from a per-epoch permutation of that task (again shared), of which each step consumes
``batch_size · world_size`` positions and rank ``r`` takes the ``r``-th slice — so ranks never
share a sample within a step. Saving ``(epoch, step)`` is therefore enough to resume the exact
sequence.

Evaluation (:class:`ShardSampler`): each rank reads one contiguous, disjoint part of a task's
validation or test set, without padding, so per-rank metric sums add up to the single-device ones.
"""
from __future__ import annotations

from typing import Iterator, Mapping, Union

import numpy as np
from torch.utils.data import Sampler

from ..errors import UserValueError

Sampling = Union[str, float]


def task_weights(sizes: Mapping[str, int], sampling: Sampling = 'proportional') -> np.ndarray:
    """Probabilities of drawing each task: ``proportional`` to its size, ``uniform``, or a
    temperature ``τ > 0`` giving ``p ∝ n^(1/τ)`` (τ = 1 is proportional, large τ tends to uniform)."""
    counts = np.array([sizes[name] for name in sizes], dtype=np.float64)
    if np.any(counts < 1):
        empty = [name for name in sizes if sizes[name] < 1]
        raise UserValueError(f'task(s) {empty} have no training samples')
    if sampling == 'proportional':
        weights = counts
    elif sampling == 'uniform':
        weights = np.ones_like(counts)
    elif isinstance(sampling, (int, float)) and not isinstance(sampling, bool) and sampling > 0:
        weights = counts ** (1.0 / float(sampling))
    else:
        raise UserValueError(f"sampling must be 'proportional', 'uniform' or a temperature > 0, got {sampling!r}")
    return weights / weights.sum()


class MultiTaskBatchSampler(Sampler[list[tuple[str, int]]]):
    """Yields batches ``[(task, index), ...]`` of one task, deterministic under a seed.

    Args:
        sizes: number of training samples per task, in a fixed task order.
        batch_size: samples per batch on each rank.
        sampling: ``'proportional'`` (default), ``'uniform'`` or a temperature (see :func:`task_weights`).
        seed: seed of the whole sequence.
        rank, world_size: this process's place under DDP.
        steps_per_epoch: batches per epoch on each rank; default ``Σn / (batch_size · world_size)``.

    A task with fewer than ``batch_size · world_size`` samples wraps around its permutation within
    a step, so its ranks may then share samples.
    """

    def __init__(self, sizes: Mapping[str, int], batch_size: int, sampling: Sampling = 'proportional',
                 seed: int = 0, rank: int = 0, world_size: int = 1, steps_per_epoch: int | None = None) -> None:
        if batch_size < 1:
            raise UserValueError(f'batch_size must be ≥ 1, got {batch_size}')
        if not 0 <= rank < world_size:
            raise UserValueError(f'rank must lie in [0, world_size={world_size}), got {rank}')
        self.tasks = list(sizes)
        self.sizes = np.array([sizes[name] for name in self.tasks], dtype=np.int64)
        self.weights = task_weights(sizes, sampling)
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        global_batch = batch_size * world_size
        self.steps_per_epoch = steps_per_epoch or max(1, int(self.sizes.sum()) // global_batch)
        self.epoch = 0
        self._next_step = 0
        self._plan_epoch: int | None = None
        self._permutations: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.steps_per_epoch

    @property
    def sampler(self) -> 'MultiTaskBatchSampler':
        """This sampler itself: Lightning calls ``set_epoch`` on ``dataloader.batch_sampler.sampler``
        (not on the batch sampler) before every epoch, and so reaches it here."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; a new epoch starts at step 0 unless resuming it."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._next_step = 0

    def _plan(self, epoch: int) -> None:
        """Task of every step of ``epoch`` and, for each step, how often its task came before."""
        if self._plan_epoch == epoch:
            return
        rng = np.random.default_rng([self.seed, epoch])
        self._task_of_step = rng.choice(len(self.tasks), size=self.steps_per_epoch, p=self.weights)
        self._occurrence = np.zeros(self.steps_per_epoch, dtype=np.int64)
        for task in range(len(self.tasks)):
            steps = np.flatnonzero(self._task_of_step == task)
            self._occurrence[steps] = np.arange(len(steps))
        self._permutations = {}
        self._plan_epoch = epoch

    def _permutation(self, epoch: int, task: int, cycle: int) -> np.ndarray:
        key = (task, cycle)
        if key not in self._permutations:
            rng = np.random.default_rng([self.seed, epoch, task, cycle, 1])
            self._permutations[key] = rng.permutation(int(self.sizes[task]))
        return self._permutations[key]

    def batch(self, epoch: int, step: int) -> list[tuple[str, int]]:
        """This rank's batch at ``step`` of ``epoch``."""
        self._plan(epoch)
        task = int(self._task_of_step[step])
        size = int(self.sizes[task])
        global_batch = self.batch_size * self.world_size
        first = int(self._occurrence[step]) * global_batch + self.rank * self.batch_size
        positions = np.arange(first, first + self.batch_size)
        indices = [int(self._permutation(epoch, task, int(p // size))[p % size]) for p in positions]
        return [(self.tasks[task], i) for i in indices]

    def __iter__(self) -> Iterator[list[tuple[str, int]]]:
        """The rest of the current epoch; once an epoch is exhausted, the next one (also without
        ``set_epoch``)."""
        if self._next_step >= self.steps_per_epoch:
            self.epoch += 1
            self._next_step = 0
        epoch = self.epoch
        for step in range(self._next_step, self.steps_per_epoch):
            self._next_step = step + 1
            yield self.batch(epoch, step)

    def state_dict(self) -> dict:
        """``{'epoch', 'step'}``: the next batch this sampler will yield.

        A DataLoader with workers draws batches ahead of the loop; a trainer that resumes should
        store the number of batches it has consumed as ``step`` (see the data module).
        """
        return {'epoch': self.epoch, 'step': self._next_step}

    def load_state_dict(self, state: Mapping) -> None:
        self.epoch = int(state['epoch'])
        self._next_step = int(state['step'])


class ShardSampler(Sampler[int]):
    """Indices ``[rank · n / world_size, (rank + 1) · n / world_size)`` of a dataset of ``n`` samples.

    Unlike ``DistributedSampler`` it never pads (a duplicated sample would count twice in the summed
    metrics) and keeps the order, so rank 0 holds the first samples (those saved and drawn).
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise UserValueError(f'rank must lie in [0, world_size={world_size}), got {rank}')
        self.start = size * rank // world_size
        self.stop = size * (rank + 1) // world_size

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))
