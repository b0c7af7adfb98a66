"""UniSTD's training: the shared multi-task loop plus the rank search of RA-MoE (METHOD.md §3, §5)."""
from __future__ import annotations

from typing import Optional, Sequence

import lightning as L
import torch
from torch import nn

from ..core.rank_budget import BudgetSGD
from ..modules.ra_moe import (clamp_ranks_, initial_total_rank, ra_moe_modules, rank_budget_loss, rank_parameters,
                              round_and_freeze_ranks)
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining, TrainingOptions


class RankSearchTraining(MultiTaskTraining):
    """Adds to :class:`MultiTaskTraining` the search of the continuous ranks.

    Two formulations (``formulation``, docs/method.md "Rank search"):

    - ``'marginal_gain'`` (default): each rank's gradient is minus the loss decrease one more
      component of that expert would give (:func:`~..modules.ra_moe.marginal_gain`); the rank
      optimizer (:class:`~..core.rank_budget.BudgetSGD`) divides the gradients by their mean
      magnitude, takes an SGD-Nesterov step and projects all ranks onto ``Σr = C``, ``r ∈ [1, R]``.
      The task loss decides where rank goes, the budget only how much; no budget term in the loss.
    - ``'paper'``: paper Eq. 9-10 literally: autograd's Eq. 9 gradient, ``β · |C − Σ r|`` added to
      the loss, SGD-Nesterov on the ranks, clamped to ``[1, max_rank]`` after each step.

    At the start of epoch ``search_epochs`` every rank is rounded and frozen (paper: 10 of 90),
    jointly so that the total stays ≤ C (largest remainder). The phase is read from the model
    (``rank_frozen`` buffers), so a resumed run continues in it. The freezing is a LightningModule
    hook rather than a callback so that it also runs under OpenSTL's ``BaseExperiment``, which
    builds its own callbacks. While searching, the mean rank of every block and matrix is logged
    as ``rank/<matrix>_<block>`` (models with a ``rank_table``).
    """

    FORMULATIONS = ('marginal_gain', 'paper')
    DEFAULT_RANK_LR = {'marginal_gain': 0.01, 'paper': 0.05}
    """Rank learning rate when none is given: the paper's 0.05 for its SGD on raw gradients; 0.01 rank
    units per step for the normalized marginal-gain steps (docs/method.md "Rank search")."""

    def init_rank_search(self, search_epochs: int = 10, rank_lr: Optional[float] = None, rank_momentum: float = 0.9,
                         rank_budget: Optional[float] = None, rank_budget_beta: float = 1.0,
                         formulation: str = 'marginal_gain') -> None:
        if formulation not in self.FORMULATIONS:
            raise ValueError(f'rank_search.formulation must be one of {self.FORMULATIONS}, got {formulation!r}')
        self.search_epochs = search_epochs
        self.rank_lr = float(rank_lr) if rank_lr is not None else self.DEFAULT_RANK_LR[formulation]
        self.rank_momentum = rank_momentum
        self.rank_budget = float(rank_budget) if rank_budget is not None else initial_total_rank(self.model)
        self.rank_budget_beta = rank_budget_beta
        self.formulation = formulation
        modules = ra_moe_modules(self.model)
        for m in modules:
            m.rank_gradient = 'eq9' if formulation == 'paper' else 'marginal_gain'
        lowest = sum(m.rank.numel() for m in modules)
        highest = sum(m.rank.numel() * m.max_rank for m in modules)
        if modules and not lowest <= self.rank_budget <= highest:
            raise ValueError(f'rank_search.budget must lie in [{lowest}, {highest}] (every rank in [1, max_rank]), '
                             f'got {self.rank_budget:g}')

    @property
    def searching(self) -> bool:
        """Whether some rank is still being searched (derived from the model, so it survives resume)."""
        return any(not m.frozen for m in ra_moe_modules(self.model))

    def weight_parameters(self) -> list[nn.Parameter]:
        ranks = {id(p) for p in rank_parameters(self.model)}
        return [p for p in self.model.parameters() if p.requires_grad and id(p) not in ranks]

    def configure_optimizers(self):
        optimizers, schedulers = super().configure_optimizers()
        modules = ra_moe_modules(self.model)
        if not modules:
            return optimizers, schedulers
        if self.formulation == 'paper':
            optimizers.append(torch.optim.SGD(rank_parameters(self.model), lr=self.rank_lr,
                                              momentum=self.rank_momentum, nesterov=self.rank_momentum > 0))
        else:
            groups = [{'params': [m.rank], 'max_rank': m.max_rank} for m in modules]
            optimizers.append(BudgetSGD(groups, self.rank_budget, lr=self.rank_lr, momentum=self.rank_momentum))
        return optimizers, schedulers

    def active_optimizers(self) -> list:
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            return [optimizers]
        return list(optimizers) if self.searching else [optimizers[0]]

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.searching or self.formulation != 'paper':
            return {}
        return {'rank_budget': rank_budget_loss(self.model, self.rank_budget, self.rank_budget_beta)}

    def after_optimizer_steps(self) -> None:
        if self.searching and self.formulation == 'paper':
            clamp_ranks_(self.model)

    def end_search_if_due(self) -> None:
        """Round and freeze the ranks once epoch ``search_epochs`` has begun (idempotent)."""
        if self.current_epoch >= self.search_epochs and self.searching:
            round_and_freeze_ranks(self.model, self.rank_budget)
            total = sum(float(m.rank.sum()) for m in ra_moe_modules(self.model))
            self.print(f'rank search ended at epoch {self.current_epoch}: ranks rounded and frozen, '
                       f'total rank {total:g} (budget {self.rank_budget:g})')

    def on_train_epoch_start(self) -> None:
        self.end_search_if_due()

    def on_train_end(self) -> None:
        if self.searching:
            self.print(f'warning: training ended during the rank search (epoch {self.current_epoch} of '
                       f'{self.search_epochs}); the ranks stay unrounded. Give trainer.max_epochs > rank_search.epochs')

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Also here: Lightning does not call ``on_train_epoch_start`` for the epoch after a checkpoint
        # saved on an epoch's last batch (before validation), so a resumed run would search one more epoch.
        self.end_search_if_due()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.searching:
            batch_size = self.prepare_batch(batch)['x'].shape[0]
            total = torch.stack([r.detach().sum() for r in rank_parameters(self.model)]).sum()
            self.log('train/total_rank', total, batch_size=batch_size)
            if hasattr(self.model, 'rank_table'):
                table = self.model.rank_table().tolist()                  # on the host: no sync per entry
                self.log_dict({f'rank/{column}_{block}': value
                               for block, row in enumerate(table)
                               for column, value in zip(self.model.RANK_COLUMNS, row)
                               if value == value}, batch_size=batch_size)        # NaN: no such adapter


class UniSTDMethod(RankSearchTraining, L.LightningModule):
    """:class:`RankSearchTraining` as a ``lightning.pytorch`` module (our tools).

    Args:
        model, tasks: see :class:`~.multitask.MultiTaskMethod`.
        search_epochs: epochs of rank search before the ranks are rounded (total ≤ C) and frozen.
        rank_lr, rank_momentum: SGD with Nesterov momentum on the ranks. With ``'marginal_gain'`` the
            gradients are divided by their mean magnitude first, so ``rank_lr`` is in rank units per step.
            ``None``: 0.01 for ``'marginal_gain'``, the paper's 0.05 for ``'paper'``.
        rank_budget: C, the total rank; ``None`` for the initial total rank.
        rank_budget_beta: β of the ``'paper'`` formulation's budget term (unused by ``'marginal_gain'``).
        formulation: ``'marginal_gain'`` (default: ranks follow the marginal gain of one more component,
            projected onto Σr = C) or ``'paper'`` (Eq. 9-10 literally: Eq. 9 gradient, β·|C − Σr| in the loss).
        **options: :class:`~.multitask.TrainingOptions` fields.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], search_epochs: int = 10,
                 rank_lr: Optional[float] = None,
                 rank_momentum: float = 0.9, rank_budget: Optional[float] = None, rank_budget_beta: float = 1.0,
                 formulation: str = 'marginal_gain', **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_rank_search(search_epochs, rank_lr, rank_momentum, rank_budget, rank_budget_beta, formulation)
        self.save_hyperparameters(ignore=['model', 'tasks'])
