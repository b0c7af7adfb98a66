"""The rank budget Σr = C as a constraint (docs/method.md#rank-search).

Three pieces, all on flat vectors of ranks with per-entry bounds ``[low, high]``:
:func:`project_onto_budget` (the Euclidean projection onto ``{Σr = C, low ≤ r ≤ high}``),
:func:`round_to_budget` (integers that keep the budget: largest remainder, never half-up drift)
and :class:`BudgetSGD` (SGD-Nesterov on mean-normalized rank gradients, projected after each step).
"""
from __future__ import annotations

from typing import Iterable

import torch


def _check_feasible(total: float, low: torch.Tensor, high: torch.Tensor) -> None:
    if not float(low.sum()) <= total <= float(high.sum()):
        raise ValueError(f'rank budget {total:g} is outside [{float(low.sum()):g}, {float(high.sum()):g}], '
                         f'the totals that ranks in [low, high] can reach')


def project_onto_budget(values: torch.Tensor, total: float, low: torch.Tensor, high: torch.Tensor,
                        iterations: int = 60) -> torch.Tensor:
    """The point of ``{Σr = total, low ≤ r ≤ high}`` closest to ``values`` (all ``(n,)``).

    It is ``clamp(values − τ, low, high)`` for the one shift ``τ`` that meets the total; ``Σ`` is
    monotone in ``τ``, so ``τ`` is found by bisection (60 halvings: float64 precision).
    """
    _check_feasible(total, low, high)
    v = values.double()
    lo, hi = low.double().expand_as(v), high.double().expand_as(v)
    left, right = float((v - hi).min()), float((v - lo).max())   # Σ = Σhigh at left, Σlow at right
    for _ in range(iterations):
        middle = 0.5 * (left + right)
        if float((v - middle).clamp(lo, hi).sum()) > total:
            left = middle
        else:
            right = middle
    return (v - 0.5 * (left + right)).clamp(lo, hi).to(values.dtype)


def round_to_budget(values: torch.Tensor, total: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Integer ranks in ``[low, high]`` near ``values`` whose sum is ``min(⌊total⌋, round(Σ values))``.

    The values are first projected onto that integer total (a no-op when they already sum to it),
    then floored, and the units still missing go to the largest fractional parts (Hamilton's
    largest-remainder method). Σ never exceeds ``⌊total⌋``, whatever the values.
    """
    low, high = low.to(values).expand_as(values), high.to(values).expand_as(values)
    target = min(int(total + 1e-6), int(torch.floor(values.double().sum() + 0.5)))
    target = min(max(target, int(low.sum())), int(high.sum()))
    projected = project_onto_budget(values.double(), float(target), low.double(), high.double())
    floors = projected.floor().clamp(low.double(), high.double())
    missing = target - int(floors.sum())
    remainder = (projected - floors).masked_fill(floors >= high.double(), -1.0)
    order = torch.argsort(remainder, descending=True, stable=True)
    floors[order[:missing]] += 1
    return floors.to(values.dtype)


class BudgetSGD(torch.optim.SGD):
    """SGD (Nesterov) on ranks that keeps them on the budget ``{Σr = budget, 1 ≤ r ≤ max_rank}``.

    Each step divides every rank gradient by the mean magnitude over all of them (so ``lr`` is in
    rank units per step whatever the scale of the loss: an expert whose gradient is ``c`` times the
    mean moves ``c·lr`` before the projection), takes the SGD step, then projects all ranks
    jointly onto the budget. Only differences between the gradients move ranks; the projection
    decides the total. Each parameter group carries its ``max_rank``.
    """

    def __init__(self, params: Iterable, budget: float, lr: float = 0.05, momentum: float = 0.9,
                 nesterov: bool = True) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
        for group in self.param_groups:
            if 'max_rank' not in group:
                raise ValueError('every BudgetSGD parameter group needs a max_rank')
        self.budget = float(budget)
        if self._ranks():
            _check_feasible(self._free_budget(), *self._bounds())

    def _ranks(self) -> list[torch.Tensor]:
        """The ranks still searched (``requires_grad``); the others are fixed and count against the budget."""
        return [p for group in self.param_groups for p in group['params'] if p.requires_grad]

    def _free_budget(self) -> float:
        fixed = [p for group in self.param_groups for p in group['params'] if not p.requires_grad]
        return self.budget - sum(float(p.detach().sum()) for p in fixed)

    def _bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = [(p.numel(), float(group['max_rank'])) for group in self.param_groups for p in group['params']
                 if p.requires_grad]
        high = torch.cat([torch.full((n,), r, dtype=torch.float64) for n, r in sizes])
        return torch.ones_like(high), high

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for p in self._ranks() if p.grad is not None]
        if grads:
            scale = torch.cat([g.flatten() for g in grads]).abs().mean()
            for g in grads:
                if scale > 0:
                    g.div_(scale)
                else:
                    g.zero_()
        loss = super().step(closure)
        self.project_()
        return loss

    @torch.no_grad()
    def project_(self) -> None:
        """Put the ranks back on the budget (also after a resume or a manual change)."""
        ranks = self._ranks()
        if not ranks:
            return
        flat = torch.cat([p.detach().flatten().double().cpu() for p in ranks])
        low, high = self._bounds()
        projected = project_onto_budget(flat, self._free_budget(), low, high)
        for p, values in zip(ranks, projected.split([p.numel() for p in ranks])):
            p.copy_(values.view_as(p))
