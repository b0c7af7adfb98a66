"""RA-MoE and the temporal module as they were computed before the fused node (commit 21a9021).

A snapshot kept as the reference the fused path is tested against: plain autograd over the same
parameters (read from a current module), with the old per-call mask, block-diagonal B, in-place
``addmm_`` and a separate autograd node for the marginal gain. Not used by the package.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fractional_rank_mask(rank, max_rank, gamma=1.0):
    floor = rank.detach().floor()
    frac = rank - floor
    if gamma != 1.0:
        frac = frac * gamma - frac.detach() * (gamma - 1.0)
    component = torch.arange(max_rank, device=rank.device, dtype=rank.dtype)
    below = (component < floor[..., None]).to(rank.dtype)
    at = (component == floor[..., None]).to(rank.dtype)
    return below + at * frac[..., None]


def marginal_gain(hidden, gate, grad_out, rank):
    batch, tokens = hidden.shape[:2]
    groups, experts = gate.shape[1:]
    max_rank = hidden.shape[-1] // (groups * experts)
    h = hidden.float().view(batch, tokens, groups, experts, max_rank) * gate.float()[:, None, :, :, None]
    g = grad_out.float().reshape(batch, tokens, groups, -1)
    per_sample = torch.einsum('bnger,bngo->bgero', h, g)
    along = (per_sample * per_sample.sum(dim=0)).sum(dim=-1)
    tiny = torch.finfo(along.dtype).tiny
    gain = along.sum(dim=0).pow(2) / along.pow(2).sum(dim=0).clamp_min(tiny)
    first = rank.detach().float().ceil().clamp(max=max_rank - 1)
    unused = (torch.arange(max_rank, device=rank.device) >= first[..., None]).float()
    return (gain * unused).sum(dim=-1) / unused.sum(dim=-1)


class _MarginalGainGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, hidden, gate, rank):
        ctx.save_for_backward(hidden, gate, rank)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_out):
        hidden, gate, rank = ctx.saved_tensors
        return grad_out, None, None, -marginal_gain(hidden, gate, grad_out, rank).to(rank.dtype)


def routing_weights(m, x):
    logits = m.router(x.mean(dim=1))
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    gate = logits.view(x.shape[0], m.groups, m.num_experts).softmax(dim=-1)
    if m.top_k is not None and m.top_k < m.num_experts:
        values, index = gate.topk(m.top_k, dim=-1)
        gate = torch.zeros_like(gate).scatter(-1, index, values)
        gate = gate / gate.sum(dim=-1, keepdim=True)
    return gate


def live_columns(m):
    live = fractional_rank_mask(m.rank, m.max_rank, m.gamma).detach().reshape(m.groups, -1) > 0.5
    width = int(live.sum(dim=1).max())
    order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)[:, :width]
    valid = torch.take_along_dim(live, order, dim=1).to(m.lora_A.dtype)
    return order, valid


def adapter(m, x, base=None):
    """The old ``RAMoELoRA.forward(x, base)`` on module ``m``'s parameters."""
    batch, tokens, _ = x.shape
    columns = m.num_experts * m.max_rank
    eq9 = m.rank_gradient == 'eq9'
    gain = not eq9 and not m.frozen and m.training and torch.is_grad_enabled() and m.rank.requires_grad
    gate = routing_weights(m, x)
    mask = fractional_rank_mask(m.rank if eq9 else m.rank.detach(), m.max_rank, m.gamma)
    coef = (gate[..., None] * mask).reshape(batch, m.groups, columns)
    weight_a = m.lora_A.view(m.groups, columns, m.in_features)
    weight_b = m.lora_B
    if m.frozen:
        index, valid = live_columns(m)
        weight_a = torch.take_along_dim(weight_a, index[..., None], dim=1)
        weight_b = torch.take_along_dim(weight_b, index[..., None], dim=1)
        coef = torch.take_along_dim(coef, index[None], dim=2) * valid
    features = F.linear(x, weight_a.reshape(-1, m.in_features))
    hidden = (features * coef.reshape(batch, 1, -1).to(features.dtype)).reshape(batch * tokens, -1)
    blocks = (m.alpha * weight_b).to(hidden.dtype)
    weight_b = blocks[0] if m.groups == 1 else torch.block_diag(*blocks.unbind(0))
    width = m.groups * m.out_features
    if base is None:
        out = torch.mm(hidden, weight_b).view(batch, tokens, width)
    else:
        out = base.reshape(batch * tokens, width).addmm_(hidden, weight_b).view(batch, tokens, width)
    if gain:
        out = _MarginalGainGradient.apply(out, features.detach(), gate.detach(), m.rank)
    return out


def wrapped_linear(layer, x):
    """The old ``RAMoELinear.forward``: the frozen layer's output, the adapter added in place."""
    return adapter(layer.adapter, x, layer.base_layer(x))


def temporal(module, x):
    """The old ``TemporalModule.forward``."""
    pooled = x.mean(dim=1, keepdim=True)
    logits = module.ffn(pooled)
    if module.adapter is not None:
        logits = logits + adapter(module.adapter, pooled)
    return x * (2.0 * torch.sigmoid(logits))
