"""TAU's training: the shared multi-task loop plus its differential divergence regularization."""
from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
from torch import nn

from ..core.losses import differential_divergence
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining, TrainingOptions


class DivergenceTraining(MultiTaskTraining):
    """Adds ``alpha · differential_divergence(pred, y)`` to the task loss (OpenSTL's TAU: alpha 0.1)."""

    def init_divergence(self, alpha: float = 0.1, tau: float = 0.1) -> None:
        self.divergence_alpha = alpha
        self.divergence_tau = tau

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        value = differential_divergence(pred, batch['y'], tau=self.divergence_tau)
        return {'differential_divergence': self.divergence_alpha * value}


class TAUMethod(DivergenceTraining, L.LightningModule):
    """:class:`DivergenceTraining` as a ``lightning.pytorch`` module.

    Args:
        alpha: weight of the regularization; tau: its softmax temperature.
        Other arguments: see :class:`~.multitask.MultiTaskMethod`.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], alpha: float = 0.1, tau: float = 0.1,
                 **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_divergence(alpha, tau)
        self.save_hyperparameters(ignore=['model', 'tasks'])
