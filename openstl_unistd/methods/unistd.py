"""UniSTD's training: the shared multi-task loop plus the rank search of RA-MoE (docs/method.md#rank-search,
docs/method.md#training-schedule)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import lightning as L
import torch
from torch import nn

from ..core.rank_budget import BudgetSGD
from ..errors import UserValueError
from ..modules.ra_moe import (clamp_ranks_, initial_total_rank, ra_moe_modules, rank_budget_loss, rank_parameters,
                              round_and_freeze_ranks, total_rank)
from ..tasks import TaskSpec
from .multitask import MultiTaskTraining
from .options import RankSearchOptions, TrainingOptions, options_of
from .registry import register_method


class RankSearchTraining(MultiTaskTraining):
    """Adds to :class:`MultiTaskTraining` the search of the continuous ranks.

    Two formulations (``rank_search.formulation``, docs/method.md "Rank search"):

    - ``'marginal_gain'`` (default): each rank's gradient is minus the loss decrease one more
      component of that expert would give (:func:`~..modules.ra_moe.marginal_gain`); the rank
      optimizer (:class:`~..core.rank_budget.BudgetSGD`) divides the gradients by their mean
      magnitude, takes an SGD-Nesterov step and projects all ranks onto ``Σr = C``, ``r ∈ [1, R]``.
      The task loss decides where rank goes, the budget only how much; no budget term in the loss.
    - ``'paper'``: paper Eq. 9-10 literally: autograd's Eq. 9 gradient, ``β · |C − Σ r|`` added to
      the loss, SGD-Nesterov on the ranks, clamped to ``[1, max_rank]`` after each step.

    At the start of epoch ``rank_search.epochs`` every rank is rounded and frozen (paper: 10 of 90),
    jointly so that the total stays ≤ C (largest remainder). The phase is read from the model
    (``rank_frozen`` buffers), so a resumed run continues in it. The freezing is a LightningModule
    hook rather than a callback so that it also runs under OpenSTL's ``BaseExperiment``, which
    builds its own callbacks. While searching, the mean rank of every block and matrix is logged
    as ``rank/<matrix>_<block>`` (models with a ``rank_table``).
    """

    def init_method(self, rank_search: Optional[Mapping] = None) -> None:
        """``rank_search``: :class:`~.options.RankSearchOptions` fields (the config's ``rank_search`` section)."""
        self.init_rank_search(options_of(RankSearchOptions, rank_search, 'rank_search'))

    def init_rank_search(self, options: RankSearchOptions) -> None:
        self.rank_search = options
        self.rank_budget = float(options.budget) if options.budget is not None else initial_total_rank(self.model)
        modules = ra_moe_modules(self.model)
        for m in modules:
            m.rank_gradient = options.rank_gradient
        lowest = sum(m.rank.numel() for m in modules)
        highest = sum(m.rank.numel() * m.max_rank for m in modules)
        if modules and not lowest <= self.rank_budget <= highest:
            raise UserValueError(f'rank_search.budget must lie in [{lowest}, {highest}] (every rank in [1, max_rank]), '
                                 f'got {self.rank_budget:g}')

    @property
    def rank_lr(self) -> float:
        """The ranks' learning rate (``rank_search.lr`` or its formulation's default)."""
        return self.rank_search.step_size

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
        momentum = self.rank_search.momentum
        if self.rank_search.formulation == 'paper':
            optimizers.append(torch.optim.SGD(rank_parameters(self.model), lr=self.rank_lr, momentum=momentum,
                                              nesterov=momentum > 0))
        else:
            groups = [{'params': [m.rank], 'max_rank': m.max_rank} for m in modules]
            optimizers.append(BudgetSGD(groups, self.rank_budget, lr=self.rank_lr, momentum=momentum))
        return optimizers, schedulers

    def active_optimizers(self) -> list:
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            return [optimizers]
        return list(optimizers) if self.searching else [optimizers[0]]

    def extra_loss(self, batch, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.searching or self.rank_search.formulation != 'paper':
            return {}
        return {'rank_budget': rank_budget_loss(self.model, self.rank_budget, self.rank_search.beta)}

    def after_optimizer_steps(self) -> None:
        if self.searching and self.rank_search.formulation == 'paper':
            clamp_ranks_(self.model)

    def end_search_if_due(self) -> None:
        """Round and freeze the ranks once epoch ``rank_search.epochs`` has begun (idempotent)."""
        if self.current_epoch >= self.rank_search.epochs and self.searching:
            round_and_freeze_ranks(self.model, self.rank_budget)
            total = float(total_rank(self.model).detach())
            self.print(f'rank search ended at epoch {self.current_epoch}: ranks rounded and frozen, '
                       f'total rank {total:g} (budget {self.rank_budget:g})')

    def on_train_epoch_start(self) -> None:
        self.end_search_if_due()

    def on_train_end(self) -> None:
        if self.searching:
            self.print(f'warning: training ended during the rank search (epoch {self.current_epoch} of '
                       f'{self.rank_search.epochs}); the ranks stay unrounded. '
                       'Give trainer.max_epochs > rank_search.epochs')

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # Also here: Lightning does not call ``on_train_epoch_start`` for the epoch after a checkpoint
        # saved on an epoch's last batch (before validation), so a resumed run would search one more epoch.
        self.end_search_if_due()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.searching:
            batch_size = self.prepare_batch(batch)['x'].shape[0]
            total = total_rank(self.model).detach()
            self.log('train/total_rank', total, batch_size=batch_size)
            if hasattr(self.model, 'rank_table'):
                table = self.model.rank_table().tolist()                  # on the host: no sync per entry
                self.log_dict({f'rank/{column}_{block}': value
                               for block, row in enumerate(table)
                               for column, value in zip(self.model.RANK_COLUMNS, row)
                               if value == value}, batch_size=batch_size)        # NaN: no such adapter


@register_method('unistd', sections=('rank_search',))
class UniSTDMethod(RankSearchTraining, L.LightningModule):
    """:class:`RankSearchTraining` as a ``lightning.pytorch`` module (our tools).

    Args:
        model, tasks: see :class:`~.multitask.MultiTaskMethod`.
        rank_search: :class:`~.options.RankSearchOptions` fields (the config's ``rank_search`` section).
        **options: :class:`~.options.TrainingOptions` fields.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], rank_search: Optional[Mapping] = None,
                 **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.init_method(rank_search)
        self.save_hyperparameters(ignore=['model', 'tasks'])
