"""UniSTD's training: the shared multi-task loop plus the rank search of RA-MoE (METHOD.md §3, §5)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..modules.ra_moe import clamp_ranks_, initial_total_rank, ra_moe_modules, rank_budget_loss, rank_parameters
from .multitask import MultiTaskMethod


class UniSTDMethod(MultiTaskMethod):
    """Adds to :class:`MultiTaskMethod` a second optimizer for the continuous ranks.

    While any RA-MoE still searches its ranks, each batch also makes an SGD-Nesterov step on the
    ranks (clamped to ``[1, max_rank]`` after it) and adds the budget term
    ``β · |C − Σ r|`` to the loss. :class:`~.rank_search.RankSearch` ends the search (rounds and
    freezes every rank) after the configured number of epochs.

    Args:
        rank_lr, rank_momentum: SGD with Nesterov momentum on the ranks.
        rank_budget: C; ``None`` for the initial total rank.
        rank_budget_beta: β.
        Other arguments: see :class:`MultiTaskMethod`.
    """

    def __init__(self, model: nn.Module, tasks, rank_lr: float = 0.05, rank_momentum: float = 0.9,
                 rank_budget: Optional[float] = None, rank_budget_beta: float = 1.0, **kwargs) -> None:
        super().__init__(model, tasks, **kwargs)
        self.rank_budget = float(rank_budget) if rank_budget is not None else initial_total_rank(model)
        self.save_hyperparameters(ignore=['model', 'tasks'])

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
            optimizers.append(torch.optim.SGD(ranks, lr=self.hparams.rank_lr, momentum=self.hparams.rank_momentum,
                                              nesterov=self.hparams.rank_momentum > 0))
        return optimizers, schedulers

    def active_optimizers(self) -> list:
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            return [optimizers]
        return list(optimizers) if self.searching else [optimizers[0]]

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.searching:
            return {}
        return {'rank_budget': rank_budget_loss(self.model, self.rank_budget, self.hparams.rank_budget_beta)}

    def after_optimizer_steps(self) -> None:
        if self.searching:
            clamp_ranks_(self.model)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.searching:
            total = torch.stack([r.detach().sum() for r in rank_parameters(self.model)]).sum()
            self.log('train/total_rank', total, batch_size=batch['x'].shape[0])
