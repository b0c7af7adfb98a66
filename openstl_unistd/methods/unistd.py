"""UniSTD's training: the shared multi-task loop plus the rank search of RA-MoE (METHOD.md §3, §5)."""
from __future__ import annotations

from typing import Optional, Sequence

import lightning as L
import torch
from torch import nn

from ..modules.ra_moe import (clamp_ranks_, initial_total_rank, ra_moe_modules, rank_budget_loss, rank_parameters,
                              round_and_freeze_ranks)
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining, TrainingOptions


class RankSearchTraining(MultiTaskTraining):
    """Adds to :class:`MultiTaskTraining` the search of the continuous ranks.

    While any RA-MoE still searches, each batch also makes an SGD-Nesterov step on the ranks
    (clamped to ``[1, max_rank]`` after it) and adds the budget term ``β · |C − Σ r|`` to the loss.
    At the start of epoch ``search_epochs`` every rank is rounded and frozen (paper: 10 of 90). The
    phase is read from the model (``rank_frozen`` buffers), so a resumed run continues in it. The
    freezing is a LightningModule hook rather than a callback so that it also runs under OpenSTL's
    ``BaseExperiment``, which builds its own callbacks.
    """

    def init_rank_search(self, search_epochs: int = 10, rank_lr: float = 0.05, rank_momentum: float = 0.9,
                         rank_budget: Optional[float] = None, rank_budget_beta: float = 1.0) -> None:
        self.search_epochs = search_epochs
        self.rank_lr = rank_lr
        self.rank_momentum = rank_momentum
        self.rank_budget = float(rank_budget) if rank_budget is not None else initial_total_rank(self.model)
        self.rank_budget_beta = rank_budget_beta

    @property
    def searching(self) -> bool:
        """Whether some rank is still being searched (derived from the model, so it survives resume)."""
        return any(not m.frozen for m in ra_moe_modules(self.model))

    def weight_parameters(self) -> list[nn.Parameter]:
        ranks = {id(p) for p in rank_parameters(self.model)}
        return [p for p in self.model.parameters() if p.requires_grad and id(p) not in ranks]

    def configure_optimizers(self):
        optimizers, schedulers = super().configure_optimizers()
        ranks = rank_parameters(self.model)
        if ranks:
            optimizers.append(torch.optim.SGD(ranks, lr=self.rank_lr, momentum=self.rank_momentum,
                                              nesterov=self.rank_momentum > 0))
        return optimizers, schedulers

    def active_optimizers(self) -> list:
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            return [optimizers]
        return list(optimizers) if self.searching else [optimizers[0]]

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.searching:
            return {}
        return {'rank_budget': rank_budget_loss(self.model, self.rank_budget, self.rank_budget_beta)}

    def after_optimizer_steps(self) -> None:
        if self.searching:
            clamp_ranks_(self.model)

    def end_search_if_due(self) -> None:
        """Round and freeze the ranks once epoch ``search_epochs`` has begun (idempotent)."""
        if self.current_epoch >= self.search_epochs and self.searching:
            round_and_freeze_ranks(self.model)
            total = sum(float(m.rank.sum()) for m in ra_moe_modules(self.model))
            self.print(f'rank search ended at epoch {self.current_epoch}: ranks rounded and frozen, '
                       f'total rank {total:g}')

    def on_train_epoch_start(self) -> None:
        self.end_search_if_due()

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Also here: Lightning does not call ``on_train_epoch_start`` for the epoch after a checkpoint
        # saved on an epoch's last batch (before validation), so a resumed run would search one more epoch.
        self.end_search_if_due()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.searching:
            total = torch.stack([r.detach().sum() for r in rank_parameters(self.model)]).sum()
            self.log('train/total_rank', total, batch_size=self.prepare_batch(batch)['x'].shape[0])


class UniSTDMethod(RankSearchTraining, L.LightningModule):
    """:class:`RankSearchTraining` as a ``lightning.pytorch`` module (our tools).

    Args:
        model, tasks: see :class:`~.multitask.MultiTaskMethod`.
        search_epochs: epochs of rank search before the ranks are rounded and frozen.
        rank_lr, rank_momentum: SGD with Nesterov momentum on the ranks.
        rank_budget: C; ``None`` for the initial total rank.
        rank_budget_beta: β.
        **options: :class:`~.multitask.TrainingOptions` fields.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], search_epochs: int = 10, rank_lr: float = 0.05,
                 rank_momentum: float = 0.9, rank_budget: Optional[float] = None, rank_budget_beta: float = 1.0,
                 **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_rank_search(search_epochs, rank_lr, rank_momentum, rank_budget, rank_budget_beta)
        self.save_hyperparameters(ignore=['model', 'tasks'])
