"""The rank budget as a constraint: projection, budget-keeping rounding, the projected rank optimizer."""
from copy import deepcopy

import pytest
import torch

from openstl_unistd.core.rank_budget import BudgetSGD, project_onto_budget, round_to_budget


def bounds(n, high=8.0):
    return torch.ones(n, dtype=torch.float64), torch.full((n,), high, dtype=torch.float64)


def test_projection_meets_the_budget_and_is_the_closest_feasible_point():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        n = int(torch.randint(2, 12, (1,), generator=generator))
        values = torch.rand(n, generator=generator, dtype=torch.float64) * 10 - 1
        total = float(torch.empty(()).uniform_(n, 8 * n, generator=generator))
        low, high = bounds(n)
        point = project_onto_budget(values, total, low, high)
        assert point.sum().item() == pytest.approx(total, abs=1e-9)
        assert bool((point >= low).all() and (point <= high).all())
        # KKT of the projection: every entry strictly inside its bounds moved by the same shift
        inside = (point > 1 + 1e-9) & (point < 8 - 1e-9)
        shifts = (values - point)[inside]
        if len(shifts):
            torch.testing.assert_close(shifts, shifts[:1].expand_as(shifts), rtol=0, atol=1e-9)
        # and no random feasible point is closer
        for _ in range(20):
            other = project_onto_budget(point + torch.randn(n, generator=generator, dtype=torch.float64), total, low, high)
            assert (values - point).norm() <= (values - other).norm() + 1e-9


def test_projection_of_a_feasible_point_leaves_it_unchanged():
    values = torch.tensor([1.0, 2.5, 8.0, 4.25], dtype=torch.float64)
    torch.testing.assert_close(project_onto_budget(values, 15.75, *bounds(4)), values, rtol=0, atol=1e-12)


def test_infeasible_budget_is_named():
    with pytest.raises(ValueError, match=r'rank budget 40 is outside \[3, 24\]'):
        project_onto_budget(torch.ones(3), 40.0, *bounds(3))


def test_rounding_never_exceeds_the_budget_and_stays_next_to_the_values():
    generator = torch.Generator().manual_seed(0)
    for case in range(300):                                   # random rank vectors, budgets and bounds
        n = int(torch.randint(1, 40, (1,), generator=generator))
        max_rank = int(torch.randint(1, 9, (1,), generator=generator))
        values = 1 + torch.rand(n, generator=generator, dtype=torch.float64) * (max_rank - 1)
        if case % 3 == 0:                                     # exact halves, the half-up trap
            values = (torch.floor(values) + 0.5).clamp(max=max_rank)
        budget = float(values.sum()) + float(torch.empty(()).uniform_(-2, 2, generator=generator))
        budget = min(max(budget, n), n * max_rank)
        ranks = round_to_budget(values, budget, *bounds(n, max_rank))
        assert torch.equal(ranks, ranks.round()) and bool((ranks >= 1).all() and (ranks <= max_rank).all())
        assert ranks.sum() <= budget + 1e-9, case
        assert ranks.sum() == min(int(budget + 1e-6), int(torch.floor(values.sum() + 0.5)))
        if abs(float(values.sum()) - float(ranks.sum())) < 1e-9:   # already on an integer total: floor or ceil
            assert bool(((ranks - values).abs() < 1).all())


def test_rounding_gives_the_units_to_the_largest_remainders():
    values = torch.tensor([4.5, 4.5, 4.5, 4.5, 2.7, 3.3], dtype=torch.float64)   # Σ = 24
    ranks = round_to_budget(values, 24.0, *bounds(6))
    assert ranks.sum() == 24 and ranks[4] == 3 and ranks[5] == 3            # 2.7 → 3, 3.3 → 3
    assert sorted(ranks[:4].tolist()) == [4, 4, 5, 5]                       # two of the four halves go up
    # 88 experts at 4.5 (the demo's budget 396): half-up rounding would give 440
    assert round_to_budget(torch.full((88,), 4.5), 396.0, *bounds(88)).sum() == 396


def ranks(*rows, max_rank=8):
    params = [torch.nn.Parameter(torch.tensor(row, dtype=torch.float32)) for row in rows]
    return params, [{'params': [p], 'max_rank': max_rank} for p in params]


def test_budget_sgd_moves_only_the_differences_and_keeps_the_total():
    params, groups = ranks([4.5, 4.5], [4.5, 4.5])
    optimizer = BudgetSGD(groups, budget=18.0, lr=0.1, momentum=0.0)
    for p, grad in zip(params, ([-3e-6, -3e-6], [-1e-6, -1e-6])):   # all want more, the first twice as much
        p.grad = torch.tensor(grad)
    optimizer.step()
    # normalized by the mean magnitude 2e-6: steps 0.15 and 0.05; the projection removes the mean 0.1
    torch.testing.assert_close(params[0].detach(), torch.tensor([4.55, 4.55]), rtol=0, atol=1e-6)
    torch.testing.assert_close(params[1].detach(), torch.tensor([4.45, 4.45]), rtol=0, atol=1e-6)
    for p in params:                                                    # equal gradients: nothing moves
        p.grad = torch.full((2,), -5.0)
    optimizer.step()
    assert sum(float(p.detach().sum()) for p in params) == pytest.approx(18.0, abs=1e-5)


def test_budget_sgd_respects_bounds_and_leaves_fixed_ranks_out():
    params, groups = ranks([7.9, 1.1], [3.0, 3.0])
    params[1].requires_grad_(False)                                     # a frozen module's ranks: 6 of the 15
    optimizer = BudgetSGD(groups, budget=15.0, lr=1.0, momentum=0.0)
    params[0].grad = torch.tensor([-1.0, 1.0])
    optimizer.step()
    assert params[0].tolist() == pytest.approx([8.0, 1.0])
    assert params[1].tolist() == [3.0, 3.0]
    with pytest.raises(ValueError, match='needs a max_rank'):
        BudgetSGD([torch.nn.Parameter(torch.ones(2))], budget=2.0)
    with pytest.raises(ValueError, match=r'rank budget 20 is outside \[2, 16\]'):
        BudgetSGD(ranks([4.0, 4.0])[1], budget=20.0)


def test_budget_sgd_state_round_trips():
    params, groups = ranks([4.5, 3.5, 5.0])
    optimizer = BudgetSGD(groups, budget=13.0)
    for step in range(3):
        params[0].grad = torch.tensor([-1.0, 0.5, float(step)])
        optimizer.step()
    copy_params, copy_groups = ranks(params[0].detach().tolist())
    restored = BudgetSGD(copy_groups, budget=13.0)
    restored.load_state_dict(deepcopy(optimizer.state_dict()))   # as from a checkpoint file
    params[0].grad, copy_params[0].grad = torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.3, -0.2, 0.1])
    optimizer.step()
    restored.step()
    torch.testing.assert_close(copy_params[0].detach(), params[0].detach(), rtol=0, atol=0)
