"""What every multi-task model shares: its task specs, the check of an input, and how T' is reached."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import UserValueError
from ..tasks import TaskLike, TaskSpec, resolve_tasks
from .rollout import check_decode, passes_needed, roll_out


class MultiTaskModel(nn.Module):
    """Base of models with ``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)`` over several tasks.

    A subclass implements :meth:`step`, one pass of the network that gives :meth:`pass_frames`
    frames; ``forward`` checks the input and reaches ``T'`` by one pass (``decode='direct'``:
    ``F = T'``) or by rolling a ``T → T`` pass out (``decode='rollout'``: ``F = T``, see
    :func:`~.rollout.roll_out`).
    """

    def __init__(self, tasks: Sequence[TaskLike], decode: str = 'direct') -> None:
        super().__init__()
        self.tasks: dict[str, TaskSpec] = {t.name: t for t in resolve_tasks(tasks)}
        self.decode = check_decode(decode)

    def task(self, name: str) -> TaskSpec:
        """The spec of a task this model serves; ``ValueError`` naming the served tasks otherwise."""
        try:
            return self.tasks[name]
        except (KeyError, TypeError):
            raise UserValueError(f'unknown task {name!r}: this model serves {sorted(self.tasks)}') from None

    def pass_frames(self, task: str) -> int:
        """``F``: frames one :meth:`step` of ``task`` gives (``T'`` direct, ``T`` rollout)."""
        spec = self.task(task)
        return spec.input_frames if self.decode == 'rollout' else spec.output_frames

    def passes(self, task: str) -> int:
        """Passes of :meth:`step` per prediction of ``T'`` frames."""
        return passes_needed(self.task(task).output_frames, self.pass_frames(task))

    def latent_grid(self, task: str) -> Optional[tuple[int, int]]:
        """``(H', W')`` of the spatial grid the shared core sees for ``task`` (``None`` if it has none)."""
        return None

    def step(self, x: torch.Tensor, task: str) -> torch.Tensor:
        """One pass: ``(B, T, C, H, W)`` → ``(B, F, C, H, W)``, ``F`` = :meth:`pass_frames`."""
        raise NotImplementedError

    def repeated_regions(self) -> list[tuple[str, nn.Module]]:
        """``(name, module)`` of the shared core's parts that :meth:`compile_regions` compiles (none here)."""
        return []

    def compile_regions(self) -> list[str]:
        """``torch.compile`` the shared core region by region, in place; returns the names compiled.

        Regional compilation: modules of one class share their compiled code, so ViT blocks compile once,
        not once per block; ``dynamic=True`` makes one graph serve every task's token grid and batch size
        (docs/performance.md, "torch.compile"). In place (``nn.Module.compile``): parameter names and
        checkpoints are those of the eager model. The per-task ends stay eager: each has its own shapes.
        """
        names = []
        for name, module in self.repeated_regions():
            module.compile(dynamic=True)
            names.append(name)
        return names

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        """``(B, T, C, H, W)`` → ``(B, T', C, H, W)`` for ``task``."""
        spec = self.check_input(x, task)
        return roll_out(lambda past: self.step(past, task), x, spec.output_frames)

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
            raise UserValueError(f"task '{task}': expected input of shape (B, T, C, H, W) = (B, {t}, {c}, {h}, {w}), "
                                 f'got {tuple(x.shape)}{wrong}')
        return spec
