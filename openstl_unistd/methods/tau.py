"""TAU's training: the shared multi-task loop plus its differential divergence regularization."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import lightning as L
import torch
from torch import nn

from ..core.losses import differential_divergence
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining
from .options import DivergenceOptions, TrainingOptions, options_of


class DivergenceTraining(MultiTaskTraining):
    """Adds ``alpha · differential_divergence(pred, y)`` to the task loss (OpenSTL's TAU: alpha 0.1)."""

    def init_divergence(self, options: DivergenceOptions) -> None:
        self.divergence = options

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        value = differential_divergence(pred, batch['y'], tau=self.divergence.tau)
        return {'differential_divergence': self.divergence.alpha * value}


class TAUMethod(DivergenceTraining, L.LightningModule):
    """:class:`DivergenceTraining` as a ``lightning.pytorch`` module.

    Args:
        divergence: :class:`~.options.DivergenceOptions` fields (``alpha``, ``tau``).
        Other arguments: see :class:`~.multitask.MultiTaskMethod`.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], divergence: Optional[Mapping] = None,
                 **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_divergence(options_of(DivergenceOptions, divergence, 'method (tau)'))
        self.save_hyperparameters(ignore=['model', 'tasks'])
