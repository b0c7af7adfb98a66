import math

import pytest
import torch

from openstl_unistd.modules.ra_moe import (
    RAMoELoRA, clamp_ranks_, fractional_rank_mask, initial_total_rank, rank_budget_loss, round_and_freeze_ranks,
    total_rank)

D_IN, D_OUT, R = 12, 10, 8


def randomized(num_experts=3, groups=1, top_k=None, gamma=1.0, alpha=1.0, seed=0):
    """A float64 RA-MoE with random B, router and ranks (B and router start at zero)."""
    torch.manual_seed(seed)
    m = RAMoELoRA(D_IN, D_OUT, num_experts, groups=groups, max_rank=R, top_k=top_k, gamma=gamma, alpha=alpha).double()
    with torch.no_grad():
        m.lora_B.normal_()
        m.router.weight.normal_()
        m.rank.uniform_(1.0, R)
    return m


def naive(m: RAMoELoRA, x: torch.Tensor) -> torch.Tensor:
    """Per group and expert: α·G_e(x)·((1−φ)·g_⌊r⌋ + φ·g_⌈r⌉) with g_k the rank-k LoRA, summed."""
    batch, _, _ = x.shape
    g_count, e_count = m.groups, m.num_experts
    weights_a = m.lora_A.view(g_count, e_count, R, D_IN)
    weights_b = m.lora_B.view(g_count, e_count, R, D_OUT)
    logits = x.mean(1) @ m.router.weight.T
    outputs = []
    for g in range(g_count):
        gate = torch.softmax(logits[:, g * e_count:(g + 1) * e_count], dim=-1)
        if m.top_k is not None:
            keep = torch.zeros_like(gate)
            for b in range(batch):
                top = torch.topk(gate[b], m.top_k).indices
                keep[b, top] = gate[b, top] / gate[b, top].sum()
            gate = keep
        out = 0
        for e in range(e_count):
            r = float(m.rank[g, e].detach())
            k, phi = math.floor(r), r - math.floor(r)
            low = x @ weights_a[g, e, :k].T @ weights_b[g, e, :k]
            high = x @ weights_a[g, e, :k + 1].T @ weights_b[g, e, :k + 1]
            out = out + gate[:, e, None, None] * ((1 - phi) * low + phi * high)
        outputs.append(out)
    return m.alpha * torch.cat(outputs, dim=-1)


def single_expert(rank: float, gamma=1.0):
    torch.manual_seed(1)
    m = RAMoELoRA(D_IN, D_OUT, num_experts=1, max_rank=R, init_rank=rank, gamma=gamma).double()
    with torch.no_grad():
        m.lora_B.normal_()
    return m


def rank_k_adapter(m, x, k):
    return x @ m.lora_A[:k].T @ m.lora_B[0, :k]


def test_mask_is_one_then_fraction_then_zero():
    mask = fractional_rank_mask(torch.tensor([2.25, 8.0, 1.0]), max_rank=4)
    assert mask.tolist() == [[1, 1, 0.25, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


@pytest.mark.parametrize('k', [1, 3, 7, 8])
def test_integer_rank_equals_the_rank_k_adapter(k):
    m = single_expert(float(k))
    x = torch.randn(2, 5, D_IN, dtype=torch.float64)
    torch.testing.assert_close(m(x), rank_k_adapter(m, x, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize('rank', [1.3, 4.5, 7.9])
def test_fractional_rank_interpolates_between_neighbouring_ranks(rank):
    m = single_expert(rank)
    x = torch.randn(2, 5, D_IN, dtype=torch.float64)
    rank = float(m.rank.detach())  # the stored value, rounded to float32 at construction
    k, phi = math.floor(rank), rank - math.floor(rank)
    expected = (1 - phi) * rank_k_adapter(m, x, k) + phi * rank_k_adapter(m, x, k + 1)
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)


def test_rank_gradient_matches_a_finite_difference_and_scales_with_gamma():
    x = torch.randn(2, 5, D_IN, dtype=torch.float64)
    weights = torch.randn(2, 5, D_OUT, dtype=torch.float64)
    rank, eps = 3.4, 1e-6

    def objective(m):
        return (m(x) * weights).sum()

    m = single_expert(rank)
    rank = float(m.rank.detach())  # float32-rounded at construction
    objective(m).backward()
    with torch.no_grad():
        m.rank.fill_(rank + eps)
        up = objective(m)
        m.rank.fill_(rank - eps)
        down = objective(m)
        m.rank.fill_(rank)
    finite_difference = (up - down) / (2 * eps)
    torch.testing.assert_close(m.rank.grad[0, 0], finite_difference, rtol=1e-6, atol=1e-9)
    component = (x @ m.lora_A[3:4].T @ m.lora_B[0, 3:4] * weights).sum()  # g_⌈r⌉ − g_⌊r⌋
    torch.testing.assert_close(m.rank.grad[0, 0], component, rtol=1e-9, atol=1e-12)

    scaled = single_expert(rank, gamma=2.5)
    objective(scaled).backward()
    torch.testing.assert_close(scaled.rank.grad, 2.5 * m.rank.grad, rtol=1e-12, atol=0)
    torch.testing.assert_close(scaled(x), m(x), rtol=0, atol=0)


@pytest.mark.parametrize('groups,top_k,alpha', [(1, None, 1.0), (3, None, 0.5), (3, 2, 1.0), (2, 1, 2.0)])
def test_stacked_fast_path_equals_a_per_expert_loop(groups, top_k, alpha):
    m = randomized(num_experts=4, groups=groups, top_k=top_k, alpha=alpha)
    x = torch.randn(3, 7, D_IN, dtype=torch.float64)
    out = m(x)
    assert out.shape == (3, 7, groups * D_OUT)
    torch.testing.assert_close(out, naive(m, x), rtol=0, atol=1e-10)


def test_round_and_freeze_makes_integer_untrainable_ranks_and_caches_the_mask():
    m = randomized(num_experts=4, groups=3, top_k=2)
    with torch.no_grad():
        m.rank.copy_(torch.tensor([[1.2, 4.5, 7.6, 2.49], [8.0, 1.0, 3.5, 6.51], [5.5, 5.49, 2.0, 1.5]]))
    x = torch.randn(2, 6, D_IN, dtype=torch.float64)
    m.round_and_freeze()
    assert m.rank.tolist() == [[1, 5, 8, 2], [8, 1, 4, 7], [6, 5, 2, 2]]
    assert not m.rank.requires_grad and m.frozen and bool(m.rank_frozen)
    # 16, 20 and 15 of 32 columns live: more than half, so every column is computed with the cached mask
    assert not m._compact and torch.equal(m._scale, fractional_rank_mask(m.rank.detach(), R))
    torch.testing.assert_close(m(x), naive(m, x), rtol=0, atol=1e-10)
    m(x).sum().backward()
    assert m.rank.grad is None


def test_mostly_dead_columns_are_dropped_after_freezing():
    m = randomized(num_experts=4, groups=3)
    with torch.no_grad():
        m.rank.copy_(torch.tensor([[1.2, 2.5, 1.0, 2.49], [3.0, 1.0, 1.5, 1.51], [2.5, 1.49, 2.0, 1.5]]))
    x = torch.randn(2, 6, D_IN, dtype=torch.float64)
    m.round_and_freeze()
    # live columns per group 7, 8, 8 of 32: only those, padded to the widest group, are computed
    assert m._compact and m._scale.shape == (3, 8) and m._rows.shape == (24,)
    assert (m._scale > 0).sum(dim=1).tolist() == [7, 8, 8]
    torch.testing.assert_close(m(x), naive(m, x), rtol=0, atol=1e-10)
    m(x).sum().backward()
    dead = fractional_rank_mask(m.rank.detach(), R).reshape(-1) == 0
    assert m.lora_A.grad[dead].abs().max() == 0 and m.lora_A.grad[~dead].abs().min() > 0
    assert m.lora_B.grad.reshape(-1, D_OUT)[dead].abs().max() == 0


def test_frozen_state_survives_a_state_dict_round_trip():
    m = randomized(num_experts=2)
    m.round_and_freeze()
    fresh = RAMoELoRA(D_IN, D_OUT, 2, max_rank=R).double()
    assert fresh.rank.requires_grad
    fresh.load_state_dict(m.state_dict())
    assert fresh.frozen and not fresh.rank.requires_grad
    x = torch.randn(2, 4, D_IN, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), m(x), rtol=0, atol=0)


def test_fresh_adapter_adds_zero_and_routes_uniformly():
    m = RAMoELoRA(D_IN, D_OUT, num_experts=6, groups=3)
    x = torch.randn(2, 5, D_IN)
    assert torch.equal(m(x), torch.zeros(2, 5, 3 * D_OUT))
    torch.testing.assert_close(m.routing_weights(x), torch.full((2, 3, 6), 1 / 6))


def test_clamp_keeps_ranks_in_range():
    m = randomized(num_experts=3)
    with torch.no_grad():
        m.rank.copy_(torch.tensor([[0.2, 5.0, 9.5]]))
    clamp_ranks_(m)
    assert m.rank.tolist() == [[1.0, 5.0, 8.0]]


def test_budget_loss_pulls_the_total_rank_toward_the_target():
    modules = torch.nn.ModuleList([RAMoELoRA(D_IN, D_OUT, 6, groups=3), RAMoELoRA(D_IN, D_OUT, 2)])
    assert initial_total_rank(modules) == 4.5 * (18 + 2)
    assert total_rank(modules).item() == 90.0
    loss = rank_budget_loss(modules, target=80.0, beta=0.5)
    assert loss.item() == pytest.approx(5.0)
    loss.backward()
    for m in modules:  # Σr above the target: the gradient raises every rank's loss, so SGD lowers it
        assert torch.equal(m.rank.grad, torch.full_like(m.rank, 0.5))
    round_and_freeze_ranks(modules)
    assert all(not m.rank.requires_grad for m in modules)


def test_fixed_rank_adapter_is_frozen_from_the_start():
    m = RAMoELoRA(D_IN, D_OUT, 1, init_rank=4, learn_rank=False)
    assert m.frozen and not m.rank.requires_grad and m._scale.shape == (1, 4)
    with pytest.raises(ValueError, match='must be an integer'):
        RAMoELoRA(D_IN, D_OUT, 1, init_rank=4.5, learn_rank=False)


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match=r'init_rank must lie in \[1, max_rank=4\], got 4.5'):
        RAMoELoRA(D_IN, D_OUT, 2, max_rank=4)
    with pytest.raises(ValueError, match=r'top_k must lie in \[1, num_experts=2\], got 3'):
        RAMoELoRA(D_IN, D_OUT, 2, top_k=3)
    with pytest.raises(ValueError, match=r'expects \(B, N, 12\) inputs, got \(2, 5, 7\)'):
        RAMoELoRA(D_IN, D_OUT, 2)(torch.randn(2, 5, 7))
