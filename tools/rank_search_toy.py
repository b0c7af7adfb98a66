"""The rank-search levers on a problem with a known answer (docs/method.md "Rank search").

Two adapted layers (one RA-MoE expert each, max rank 8) on independent inputs whose outputs add up;
the teacher is the frozen maps plus updates of rank 1 and rank 6. Both ranks start at 3.5 under a
budget of 7, so the right answer is (1, 6). Each variant runs ``--steps`` steps for ``--seeds``
seeds and prints, per seed, the searched ranks and the budget-rounded ranks.

    python tools/rank_search_toy.py                    # every variant
    python tools/rank_search_toy.py paper marginal_gain --seeds 3
"""
from __future__ import annotations

import argparse
import math
import torch
import torch.nn.functional as F
from torch import nn

from openstl_unistd.core.rank_budget import BudgetSGD, project_onto_budget
from openstl_unistd.modules import ra_moe
from openstl_unistd.modules.lora_injection import RAMoELinear


def unit_curvature_gain(hidden, gate, grad_out, rank):
    """The first marginal-gain variant: ‖hᵀ ∂L/∂y‖² / ‖h‖² (unit curvature, not scale-free)."""
    batch, tokens = hidden.shape[:2]
    groups, experts = gate.shape[1:]
    max_rank = hidden.shape[-1] // (groups * experts)
    h = hidden.float().view(batch, tokens, groups, experts, max_rank) * gate.float()[:, None, :, :, None]
    g = grad_out.float().reshape(batch, tokens, groups, -1)
    gain = torch.einsum('bnger,bngo->gero', h, g).pow(2).sum(-1) / h.pow(2).sum((0, 1)).clamp_min(1e-30)
    unused = (torch.arange(max_rank) >= rank.detach().ceil().clamp(max=max_rank - 1)[..., None]).float()
    return (gain * unused).sum(-1) / unused.sum(-1)


# name: (rank gradient, rank optimizer, rank lr, extra options)
VARIANTS = {
    'paper': ('eq9', 'paper', 0.05, {}),
    'paper_gamma100': ('eq9', 'paper', 0.05, {'gamma': 100.0}),
    'paper_gamma1000': ('eq9', 'paper', 0.05, {'gamma': 1000.0}),
    'eq9_projected': ('eq9', 'budget_sgd', 0.01, {}),
    'eq9_projected_start100': ('eq9', 'budget_sgd', 0.01, {'start': 100}),
    'eq9_adam_projected': ('eq9', 'adam', 0.01, {}),
    'gain_unit_curvature': ('unit', 'budget_sgd', 0.01, {}),
    'marginal_gain': ('marginal_gain', 'budget_sgd', 0.01, {}),
}


def run(variant: str, seed: int, steps: int = 300, dim: int = 16, scale: float = 0.1, budget: float = 7.0):
    signal, optimizer_name, rank_lr, options = VARIANTS[variant]
    torch.manual_seed(seed)
    layers, teachers = nn.ModuleList(), []
    for rank in (1, 6):
        base = nn.Linear(dim, dim, bias=False).requires_grad_(False)
        update = torch.randn(dim, rank) @ torch.randn(rank, dim) / math.sqrt(dim * rank)
        teachers.append(base.weight + scale * update)
        adapter = ra_moe.RAMoELoRA(dim, dim, 1, max_rank=8, init_rank=3.5, gamma=options.get('gamma', 1.0))
        adapter.rank_gradient = 'eq9' if signal == 'eq9' else 'marginal_gain'
        layers.append(RAMoELinear(base, adapter))
    ranks = [layer.adapter.rank for layer in layers]
    weights = [p for name, p in layers.named_parameters() if p.requires_grad and not name.endswith('rank')]
    weight_optimizer = torch.optim.AdamW(weights, lr=1e-2, weight_decay=1e-5)
    if optimizer_name == 'paper':
        rank_optimizer = torch.optim.SGD(ranks, lr=rank_lr, momentum=0.9, nesterov=True)
    elif optimizer_name == 'adam':
        rank_optimizer = torch.optim.Adam(ranks, lr=rank_lr)
    else:
        rank_optimizer = BudgetSGD([{'params': [r], 'max_rank': 8} for r in ranks], budget, lr=rank_lr)
    original_gain = ra_moe.marginal_gain
    if signal == 'unit':
        ra_moe.marginal_gain = unit_curvature_gain
    try:
        for step in range(steps):
            inputs = [torch.randn(32, 4, dim) for _ in layers]
            pred = sum(layer(x) for layer, x in zip(layers, inputs))
            loss = F.mse_loss(pred, sum(x @ t.T for x, t in zip(inputs, teachers)))
            if optimizer_name == 'paper':
                loss = loss + ra_moe.rank_budget_loss(layers, budget)
            weight_optimizer.zero_grad()
            rank_optimizer.zero_grad()
            loss.backward()
            weight_optimizer.step()
            if step < options.get('start', 0):
                continue
            rank_optimizer.step()
            with torch.no_grad():
                if optimizer_name == 'paper':
                    ra_moe.clamp_ranks_(layers)
                elif optimizer_name == 'adam':
                    flat = project_onto_budget(torch.cat([r.flatten() for r in ranks]), budget,
                                               torch.ones(2), torch.full((2,), 8.0))
                    for r, value in zip(ranks, flat):
                        r.fill_(float(value))
    finally:
        ra_moe.marginal_gain = original_gain
    searched = [float(r.detach()) for r in ranks]
    ra_moe.round_and_freeze_ranks(layers, budget)
    return searched, [int(r) for r in ranks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('variants', nargs='*', help=f'any of {", ".join(VARIANTS)} (default: all)')
    parser.add_argument('--seeds', type=int, default=6)
    parser.add_argument('--steps', type=int, default=300)
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f'unknown variant(s) {unknown}; known: {list(VARIANTS)}')
    print('| variant | searched (rank-1 / rank-6 target), per seed | rounded | seeds right (r6 − r1 ≥ 3) |')
    print('|---|---|---|---|')
    for variant in args.variants or list(VARIANTS):
        results = [run(variant, seed, args.steps) for seed in range(args.seeds)]
        searched = ' '.join(f'{a:.2f}/{b:.2f}' for (a, b), _ in results)
        rounded = ' '.join(f'{a}/{b}' for _, (a, b) in results)
        right = sum(b - a >= 3 for _, (a, b) in results)
        print(f'| {variant} | {searched} | {rounded} | {right}/{args.seeds} |', flush=True)


if __name__ == '__main__':
    main()
