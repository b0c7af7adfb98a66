"""TAU's training: the shared multi-task loop plus its differential divergence regularization."""
from __future__ import annotations

import torch
from torch import nn

from ..core.losses import differential_divergence
from .multitask import MultiTaskMethod


class TAUMethod(MultiTaskMethod):
    """Adds ``alpha · differential_divergence(pred, y)`` to the task loss (OpenSTL's TAU: alpha 0.1).

    Args:
        alpha: weight of the regularization; tau: its softmax temperature.
        Other arguments: see :class:`MultiTaskMethod`.
    """

    def __init__(self, model: nn.Module, tasks, alpha: float = 0.1, tau: float = 0.1, **kwargs) -> None:
        super().__init__(model, tasks, **kwargs)
        self.save_hyperparameters(ignore=['model', 'tasks'])

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        value = differential_divergence(pred, batch['y'], tau=self.hparams.tau)
        return {'differential_divergence': self.hparams.alpha * value}
