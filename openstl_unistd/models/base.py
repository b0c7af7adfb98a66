"""What every multi-task model shares: its task specs and the check of an input against them."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..tasks import TaskLike, TaskSpec, resolve_tasks


class MultiTaskModel(nn.Module):
    """Base of models with ``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)`` over several tasks."""

    def __init__(self, tasks: Sequence[TaskLike]) -> None:
        super().__init__()
        self.tasks: dict[str, TaskSpec] = {t.name: t for t in resolve_tasks(tasks)}

    def task(self, name: str) -> TaskSpec:
        """The spec of a task this model serves; ``ValueError`` naming the served tasks otherwise."""
        try:
            return self.tasks[name]
        except (KeyError, TypeError):
            raise ValueError(f'unknown task {name!r}: this model serves {sorted(self.tasks)}') from None

    def check_input(self, x: torch.Tensor, task: str) -> TaskSpec:
        """Raise a ``ValueError`` naming the task, the expected and the actual shape on a mismatch."""
        spec = self.task(task)
        expected = spec.input_shape
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            t, c, h, w = expected
            wrong = ''
            if x.dim() == 5:
                labels = ('T', 'C', 'H', 'W')
                wrong = '; ' + ', '.join(f'{label} is {got}, expected {want}' for label, got, want
                                         in zip(labels, x.shape[1:], expected) if got != want)
            raise ValueError(f"task '{task}': expected input of shape (B, T, C, H, W) = (B, {t}, {c}, {h}, {w}), "
                             f'got {tuple(x.shape)}{wrong}')
        return spec
