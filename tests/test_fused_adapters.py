"""The fused RA-MoE node and temporal module against the plain-autograd computation they replaced.

Float64, every rank mode (Eq. 9 search, marginal-gain search, frozen ranks), groups 1 and 3, top-k
routing, α and γ: outputs and the gradient of every input and parameter must equal the reference
(``tests/reference_ra_moe.py``, the modules as of commit 21a9021).
"""
import copy

import pytest
import torch

from openstl_unistd.modules.lora_injection import RAMoELinear
from openstl_unistd.modules.ra_moe import RAMoELoRA
from openstl_unistd.modules.temporal import TemporalModule

from . import reference_ra_moe as reference

D_IN, D_OUT = 12, 10
MODES = ('eq9', 'marginal_gain', 'frozen')


def adapter(groups, experts=3, top_k=None, alpha=1.0, gamma=1.0, mode='eq9', max_rank=6, seed=0, dim_out=D_OUT,
            highest_rank=None):
    torch.manual_seed(seed)
    m = RAMoELoRA(D_IN, dim_out, experts, groups=groups, max_rank=max_rank, init_rank=1.5, top_k=top_k,
                  alpha=alpha, gamma=gamma).double()
    with torch.no_grad():
        m.lora_B.normal_()
        m.router.weight.normal_()
        m.rank.uniform_(1.0, highest_rank or max_rank)
        m.rank[0, 0] = 2.0                      # an integer rank: the one-sided derivative
    if mode == 'frozen':
        m.round_and_freeze()
        assert m._compact or highest_rank is None
    else:
        m.rank_gradient = mode
    return m.train()


def compare(new_module, new_fn, old_module, old_fn, x, rtol=1e-10, atol=1e-12):
    """Outputs and every gradient equal; the marginal gain (the ranks' gradient in that mode) to float32
    precision, in which the reference computed it (the node computes it in the inputs' precision)."""
    gain = getattr(new_module, 'rank_gradient', None) == 'marginal_gain' or any(
        getattr(m, 'rank_gradient', None) == 'marginal_gain' and not m.frozen for m in new_module.modules()
        if isinstance(m, RAMoELoRA))
    weights = torch.randn(new_fn(new_module, x.clone()).shape, dtype=torch.float64)
    results = []
    for module, fn in ((new_module, new_fn), (old_module, old_fn)):
        inp = x.clone().requires_grad_(True)
        out = fn(module, inp)
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(out, [p for _, p in named] + [inp], weights, allow_unused=True)
        results.append((out, dict(zip([n for n, _ in named] + ['x'], grads))))
    (out_new, grads_new), (out_old, grads_old) = results
    torch.testing.assert_close(out_new, out_old, rtol=rtol, atol=atol)
    assert grads_new.keys() == grads_old.keys()
    for name in grads_old:
        if grads_old[name] is None:
            assert grads_new[name] is None or not grads_new[name].any(), name
            continue
        tolerance = dict(rtol=1e-5, atol=1e-7) if gain and name.endswith('rank') else dict(rtol=rtol, atol=atol)
        torch.testing.assert_close(grads_new[name], grads_old[name], **tolerance, msg=lambda m: f'{name}: {m}')


CASES = [dict(groups=1), dict(groups=3), dict(groups=3, top_k=2), dict(groups=1, top_k=1, alpha=0.5),
         dict(groups=3, alpha=2.0, gamma=2.5), dict(groups=2, experts=4, top_k=3, max_rank=4),
         dict(groups=3, top_k=2, max_rank=8, highest_rank=3.0), dict(groups=1, max_rank=8, highest_rank=3.0)]
"""The last two have mostly dead columns once frozen: the node computes only the live ones."""


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('case', CASES, ids=lambda c: '-'.join(f'{k}{v}' for k, v in c.items()))
def test_adapter_equals_the_reference(case, mode):
    m = adapter(mode=mode, **case)
    x = torch.randn(3, 5, D_IN, dtype=torch.float64)
    compare(m, lambda mod, inp: mod(inp), copy.deepcopy(m), reference.adapter, x)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('groups,train_base', [(1, False), (3, False), (3, True)])
def test_wrapped_layer_equals_the_reference(groups, train_base, mode):
    torch.manual_seed(3)
    base = torch.nn.Linear(D_IN, groups * D_OUT).double().requires_grad_(train_base)
    layer = RAMoELinear(base, adapter(groups=groups, top_k=2 if groups == 3 else None, mode=mode)).train()
    x = torch.randn(2, 7, D_IN, dtype=torch.float64)
    compare(layer, lambda mod, inp: mod(inp), copy.deepcopy(layer), reference.wrapped_linear, x)


@pytest.mark.parametrize('mode', MODES)
def test_temporal_module_equals_the_reference(mode):
    torch.manual_seed(4)
    dim = 12
    module = TemporalModule(dim, hidden_ratio=3, adapter=adapter(groups=1, experts=2, mode=mode, dim_out=dim)).double()
    with torch.no_grad():
        module.ffn[2].weight.normal_()
        module.ffn[2].bias.normal_()
    x = torch.randn(3, 6, dim, dtype=torch.float64)
    compare(module.train(), lambda mod, inp: mod(inp), copy.deepcopy(module), reference.temporal, x)


@pytest.mark.parametrize('mode', MODES)
def test_bf16_autocast_agrees_with_the_reference_to_bf16_precision(mode):
    """The node casts explicitly instead of relying on autocast: same dtypes out, same values to bf16 precision."""
    torch.manual_seed(5)
    base = torch.nn.Linear(D_IN, 3 * D_OUT)
    layer = RAMoELinear(base, adapter(groups=3, top_k=2, mode=mode).float()).train()
    old = copy.deepcopy(layer)
    x = torch.randn(2, 9, D_IN)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        new_out, old_out = layer(x), reference.wrapped_linear(old, x)
    assert new_out.dtype == old_out.dtype == torch.bfloat16
    torch.testing.assert_close(new_out.float(), old_out.float(), rtol=2e-2, atol=2e-2)
    new_out.float().square().sum().backward()
    old_out.float().square().sum().backward()
    for (name, p), q in zip(layer.named_parameters(), old.parameters()):
        if p.requires_grad and q.grad is not None and not name.endswith('rank'):
            assert p.grad.dtype == torch.float32, name
            scale = q.grad.abs().max().clamp_min(1e-6)
            assert float((p.grad - q.grad).abs().max() / scale) < 0.05, name


def test_a_typo_in_the_rank_gradient_is_refused():
    m = RAMoELoRA(D_IN, D_OUT, 2)
    with pytest.raises(ValueError, match=r"rank_gradient must be one of \('eq9', 'marginal_gain'\), got 'marginal'"):
        m.rank_gradient = 'marginal'
