"""TAU's training: the shared multi-task loop plus its differential divergence regularization."""
from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
from torch import nn

from ..core.losses import differential_divergence
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining
from .options import DivergenceOptions, TrainingOptions, options_of
from .registry import register_method


class DivergenceTraining(MultiTaskTraining):
    """Adds ``alpha · differential_divergence(pred, y)`` to the task loss (OpenSTL's TAU: alpha 0.1)."""

    def init_method(self, **divergence) -> None:
        """``divergence``: :class:`~.options.DivergenceOptions` fields (the config's ``method`` dict)."""
        self.init_divergence(options_of(DivergenceOptions, divergence, "config section 'method (tau)'"))

    def init_divergence(self, options: DivergenceOptions) -> None:
        self.divergence = options

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        value = differential_divergence(pred, batch['y'], tau=self.divergence.tau)
        return {'differential_divergence': self.divergence.alpha * value}


@register_method('tau', options=DivergenceOptions)
class TAUMethod(DivergenceTraining, L.LightningModule):
    """:class:`DivergenceTraining` as a ``lightning.pytorch`` module.

    Args:
        alpha, tau: :class:`~.options.DivergenceOptions` (the config's ``method=dict(type='tau', ...)``).
        Other arguments: see :class:`~.multitask.MultiTaskMethod`.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], alpha: float = DivergenceOptions.alpha,
                 tau: float = DivergenceOptions.tau, **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_method(alpha=alpha, tau=tau)
        self.save_hyperparameters(ignore=['model', 'tasks'])
