"""Rank-adaptive mixture of LoRA experts (RA-MoE, docs/method.md#ra-moe-lora).

Each expert ``e`` is a LoRA pair ``A_e ∈ R^{d_in×R}``, ``B_e ∈ R^{R×d_out}`` with a continuous
rank ``r_e ∈ [1, R]``. The rank acts through a mask over the R components: 1 for components
``0..k−1``, ``φ`` for component ``k`` and 0 after (``k = ⌊r⌋``, ``φ = r − k``), so the expert
interpolates linearly between its rank-``k`` and rank-``k+1`` adapters. The gradient reaching
``r`` is ``γ`` times the contribution of component ``k`` (paper Eq. 9).

How the ranks learn is switched by :attr:`RAMoELoRA.rank_gradient`: ``'eq9'`` (the paper:
autograd through the mask) or ``'marginal_gain'`` (the rank search's default, set by the training
method): minus the loss decrease that one more component of each expert would give, see
:func:`marginal_gain` and docs/method.md "Rank search".

The hot path is one autograd node (:class:`_RAMoEFunction`) with a hand-written backward, so the
adapters cost what their FLOPs and bytes cost, not a kernel per small step (docs/performance.md,
"Kernels"): gate ⊗ rank mask is folded into one per-sample scale of the rank-space features, the
wrapped layer's own product is accumulated in place with the LoRA product, Q/K/V's three groups
run as one batched matmul (no block-diagonal zeros), the mask is cached once the ranks are frozen
(and then only the live columns are computed), and the marginal gain comes out of the same backward.
"""
from __future__ import annotations

import contextlib
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..core.rank_budget import round_to_budget
from ..errors import UserValueError
from .adapter import Adapter

RANK_GRADIENTS = ('eq9', 'marginal_gain')
AUTOCAST_DEVICES = ('cpu', 'cuda', 'xpu', 'mps')


class _FractionalRankMask(torch.autograd.Function):
    """``clamp(r − j, 0, 1)`` over components ``j``, with ``∂/∂r = γ`` at component ``⌊r⌋`` only.

    ``r − j`` is ≥ 1 below ``⌊r⌋`` (mask 1), the fraction ``r − ⌊r⌋`` at it and negative above (mask 0),
    so the value is the mask of the module docstring in two kernels, with no floor/compare chain.
    """

    @staticmethod
    def forward(ctx, rank: torch.Tensor, components: torch.Tensor, gamma: float) -> torch.Tensor:
        offset = rank.unsqueeze(-1) - components
        ctx.save_for_backward(offset)
        ctx.gamma = gamma
        return offset.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        offset, = ctx.saved_tensors
        grad_rank = (grad * (offset.floor() == 0)).sum(-1)          # 0 ≤ r − j < 1: the component j = ⌊r⌋
        return grad_rank * ctx.gamma if ctx.gamma != 1.0 else grad_rank, None, None


def fractional_rank_mask(rank: torch.Tensor, max_rank: int, gamma: float = 1.0,
                         components: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mask ``(..., max_rank)`` of continuous ranks ``(...)``.

    Entry ``j`` is 1 for ``j < ⌊r⌋``, ``r − ⌊r⌋`` for ``j = ⌊r⌋`` and 0 after. The gradient with
    respect to ``r`` flows only through entry ``⌊r⌋`` and is scaled by ``gamma``; at an integer
    rank this is the one-sided derivative towards the next rank. ``components`` (``arange(max_rank)``
    in ``rank``'s dtype) may be passed to save building it.
    """
    if components is None:
        components = torch.arange(max_rank, device=rank.device, dtype=rank.dtype)
    return _FractionalRankMask.apply(rank, components, float(gamma))


def marginal_gain(hidden: torch.Tensor, gate: torch.Tensor, grad_out: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """``(groups, num_experts)``: how much one more component of each expert would lower the loss.

    Component ``j`` of expert ``e``, switched on, would receive in its output weights ``b_j`` the
    per-sample gradients ``m_s = Σ_tokens G_e(x_s)·(x_s a_j) ⊗ ∂L/∂y_s`` (sample ``s``). The loss
    decrease of the best step along their sum ``v = Σ_s m_s``, with the curvature estimated by the
    empirical Fisher ``Σ_s ⟨m_s, v⟩²``, is ``(Σ_s ⟨m_s, v⟩)² / Σ_s ⟨m_s, v⟩²`` times the current
    loss, a factor shared by every expert at a step. That ratio (between 0 and the batch size) is
    returned: large where all samples ask the new component for the same change, about 1 where
    they disagree (noise). Being a ratio it is blind to the scale of ``∂L/∂y``, which differs by
    orders of magnitude between Q/K/V/Proj (per token) and the temporal RA-MoE (one token that
    gates all of them), so every adapter is measured on the same footing. It is averaged over
    the components the expert does not use yet (``j ≥ ⌈r⌉``; the top one at ``r > max_rank − 1``).
    It does not depend on ``B`` (nonzero from the first step) nor on α.

    Args:
        hidden: ``(B, N, groups · num_experts · max_rank)`` the adapter's ``x A`` before gating and mask.
        gate: ``(B, groups, num_experts)`` routing weights.
        grad_out: ``(B, N, groups · out_features)`` gradient of the loss at the adapter output.
        rank: ``(groups, num_experts)`` current ranks.
    """
    batch, tokens = hidden.shape[:2]
    groups, experts = gate.shape[1:]
    max_rank = hidden.shape[-1] // (groups * experts)
    wide = torch.promote_types(hidden.dtype, torch.float32)
    products = torch.einsum('bngk,bngo->bgko', hidden.reshape(batch, tokens, groups, -1),
                            grad_out.reshape(batch, tokens, groups, -1))           # Σ_tokens (x a_j) ⊗ ∂L/∂y
    per_sample = products.to(wide).view(batch, groups, experts, max_rank, -1) * gate.to(wide)[..., None, None]
    along = (per_sample * per_sample.sum(dim=0)).sum(dim=-1)            # ⟨m_s, v⟩: (B, groups, experts, R)
    tiny = torch.finfo(along.dtype).tiny
    gain = along.sum(dim=0).pow(2) / along.pow(2).sum(dim=0).clamp_min(tiny)
    first = rank.detach().to(wide).ceil().clamp(max=max_rank - 1)
    unused = (torch.arange(max_rank, device=rank.device) >= first[..., None]).to(wide)
    return (gain * unused).sum(dim=-1) / unused.sum(dim=-1)


def routing_gates(logits: torch.Tensor, top_k: Optional[int]) -> torch.Tensor:
    """Softmax over the last dim of ``logits (B, groups, experts)``, restricted to its ``top_k`` largest
    entries (a softmax over those alone: the top-k weights renormalized, the others exactly 0)."""
    if top_k is not None and top_k < logits.shape[-1]:
        keep = logits.topk(top_k, dim=-1).indices
        logits = torch.full_like(logits, -math.inf).scatter(-1, keep, logits.gather(-1, keep))
    return logits.softmax(dim=-1)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype matrix products on ``x`` run in: autocast's where it is on for ``x``'s device, else ``x``'s."""
    device = x.device.type
    if device in AUTOCAST_DEVICES and x.is_floating_point() and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


class _RAMoEFunction(torch.autograd.Function):
    """``[x W + b] + Σ_g,e G_e(x)·((x A_e) ⊙ s_e) B_e`` (the wrapped layer optional) as one node.

    Shapes: ``x (B, N, D)`` in the compute dtype; ``scale`` the rank-space scale α·mask, ``(G, E, R)``
    while ranks are searched or ``(G, W)`` for the ``W`` live columns per group once frozen
    (``rows (G·W,)`` their rows in ``lora_A``/``lora_B``, ``experts (G, W)`` their experts);
    ``lora_A (G·E·R, D)``, ``lora_B (G, E·R, O)``, ``router (G·E, D)``; ``weight (G·O, D)``, ``bias``
    of the wrapped layer or ``None``; ``rank (G, E)`` only when its gradient is the marginal gain.
    Routing runs in float32 (float64 for float64 inputs); products in ``x``'s dtype.
    """

    @staticmethod
    def forward(ctx, x, scale, lora_a, lora_b, router, weight, bias, rank, rows, experts, groups: int,
                num_experts: int, top_k: Optional[int]):
        batch, tokens, dim = x.shape
        dtype, wide = x.dtype, torch.promote_types(x.dtype, torch.float32)
        out_features = lora_b.shape[-1]
        flat = x.reshape(batch * tokens, dim)
        ctx.rows_total = lora_a.shape[0]
        if rows is not None:
            lora_a = lora_a.index_select(0, rows)
            lora_b = lora_b.reshape(-1, out_features).index_select(0, rows).view(groups, -1, out_features)
        width = lora_b.shape[1]
        columns = groups * width
        stacked = torch.cat([lora_a, router]).to(dtype)         # x·A and the per-token router logits: one product
        features = flat @ stacked.t()                            # (B·N, G·W + G·E)
        hidden = features[:, :columns]
        per_token = features[:, columns:].view(batch, tokens, -1)
        logits = per_token.mean(dim=1, dtype=wide) if tokens > 1 else per_token[:, 0].to(wide)
        gate = routing_gates(logits.view(batch, groups, num_experts), top_k)
        if rows is None:
            coef = gate.unsqueeze(-1) * scale.to(wide)                             # (B, G, E, R)
        else:
            coef = gate.gather(2, experts.expand(batch, -1, -1)) * scale.to(wide)  # (B, G, W)
        coef = coef.to(dtype).view(batch, 1, columns)
        scaled = (hidden.view(batch, tokens, columns) * coef).view(batch * tokens, columns)
        weight_b = lora_b.to(dtype)
        weight_c = weight.to(dtype) if weight is not None else None
        out = F.linear(flat, weight_c, bias.to(dtype) if bias is not None else None) if weight is not None else None
        out = _add_lora_product(out, scaled, weight_b)
        ctx.save_for_backward(flat, gate, coef, hidden, scaled, stacked, weight_b, weight_c, scale, rank, rows,
                              experts)
        ctx.sizes = (batch, tokens, groups, num_experts, width)
        ctx.dtypes = (lora_a.dtype, lora_b.dtype, router.dtype)
        return out.view(batch, tokens, -1)

    @staticmethod
    def backward(ctx, grad_out):
        flat, gate, coef, hidden, scaled, stacked, weight_b, weight_c, scale, rank, rows, experts = ctx.saved_tensors
        batch, tokens, groups, num_experts, width = ctx.sizes
        need_x, need_scale, need_a, need_b, need_router, need_weight, need_bias = ctx.needs_input_grad[:7]
        columns = groups * width
        grad = grad_out.reshape(batch * tokens, -1)
        if groups == 1:
            grad_scaled = grad @ weight_b[0].t()
            grad_b = (scaled.t() @ grad).unsqueeze(0) if need_b else None
        else:
            by_group = grad.view(batch * tokens, groups, -1).transpose(0, 1)           # (G, B·N, O)
            grad_scaled = torch.bmm(by_group, weight_b.transpose(1, 2)).transpose(0, 1)  # (B·N, G, W)
            grad_b = torch.bmm(_by_group(scaled, groups).transpose(1, 2), by_group) if need_b else None
        grad_scaled = grad_scaled.reshape(batch, tokens, groups, width)
        grad_hidden = (grad_scaled * coef.view(batch, 1, groups, width)).reshape(batch, tokens, columns)
        grad_coef = (grad_scaled * hidden.view(batch, tokens, groups, width)).sum(dim=1, dtype=gate.dtype)
        if rows is None:
            per_expert = grad_coef.view(batch, groups, num_experts, -1)
            grad_gate = (per_expert * scale.to(gate.dtype)).sum(dim=-1)
            grad_scale = (per_expert * gate.unsqueeze(-1)).sum(dim=0) if need_scale else None
        else:
            index = experts.expand(batch, -1, -1)
            grad_gate = torch.zeros_like(gate).scatter_add_(2, index, grad_coef * scale.to(gate.dtype))
            grad_scale = None
        grad_logits = torch._softmax_backward_data(grad_gate, gate, -1, gate.dtype).view(batch, 1, -1)
        per_token = (grad_logits / tokens).to(grad_hidden.dtype).expand(batch, tokens, -1)
        grad_features = torch.cat([grad_hidden, per_token], dim=-1).view(batch * tokens, -1)
        grad_a = grad_router = None
        if need_a or need_router:
            a_dtype, _, router_dtype = ctx.dtypes
            grad_stacked = (grad_features.t() @ flat).to(a_dtype)
            grad_a, grad_router = grad_stacked[:columns], grad_stacked[columns:].to(router_dtype)
        if grad_b is not None:
            grad_b = grad_b.to(ctx.dtypes[1])
        if rows is not None:                                   # live columns back to their rows; dead rows get 0
            grad_a = _rows_into(grad_a, rows, ctx.rows_total)
            if grad_b is not None:
                grad_b = _rows_into(grad_b.reshape(-1, grad_b.shape[-1]), rows, ctx.rows_total).view(groups, -1,
                                                                                                 grad_b.shape[-1])
        grad_x = None
        if need_x:
            grad_x = grad_features @ stacked if weight_c is None else (grad @ weight_c).addmm_(grad_features, stacked)
            grad_x = grad_x.view(batch, tokens, -1)
        grad_weight = grad.t() @ flat if need_weight else None
        grad_bias = grad.sum(dim=0) if need_bias else None
        grad_rank = None
        if rank is not None:
            grad_rank = -marginal_gain(hidden.view(batch, tokens, -1), gate, grad_out, rank).to(rank.dtype)
        return (grad_x, grad_scale, grad_a, grad_b, grad_router, grad_weight, grad_bias, grad_rank,
                None, None, None, None, None)


def _add_lora_product(out: Optional[torch.Tensor], scaled: torch.Tensor, weight_b: torch.Tensor) -> torch.Tensor:
    """``out + scaled_g @ B_g`` for every group ``g`` (``out (B·N, G·O)`` or ``None`` for 0), as ``(B·N, G·O)``.

    One group: one ``addmm_``. Several: one batched matmul over the groups, whose operands are
    strided views of the fused layout (no block-diagonal zeros); eager mode accumulates it in place
    into ``out``, compiled code adds it (the compiler fuses the add, and cannot trace an in-place
    product into a transposed view).
    """
    groups = weight_b.shape[0]
    if groups == 1:
        return scaled @ weight_b[0] if out is None else out.addmm_(scaled, weight_b[0])
    by_group = _by_group(scaled, groups)
    if out is not None and not torch.compiler.is_compiling():
        out.view(out.shape[0], groups, -1).transpose(0, 1).baddbmm_(by_group, weight_b)
        return out
    product = torch.bmm(by_group, weight_b).transpose(0, 1)                         # (B·N, G, O)
    if out is None:
        return product.reshape(scaled.shape[0], -1)
    return (out.view(product.shape) + product).view(out.shape)


def _by_group(columns: torch.Tensor, groups: int) -> torch.Tensor:
    """``(B·N, G·W)`` → the view ``(G, B·N, W)`` (no copy: a strided batch for ``bmm``)."""
    return columns.view(columns.shape[0], groups, -1).transpose(0, 1)


def _rows_into(values: Optional[torch.Tensor], rows: torch.Tensor, total: int) -> Optional[torch.Tensor]:
    """``values (len(rows), F)`` placed at ``rows`` of a zero ``(total, F)`` gradient (dead rows get 0)."""
    if values is None:
        return None
    return values.new_zeros(total, values.shape[1]).index_add_(0, rows, values)


class RAMoELoRA(Adapter):
    """The adapter path ``α · Σ_e G_e(x) · ((x A_e) ⊙ m_e) B_e`` of one or more groups.

    Shapes: ``x (B, N, in_features)`` → ``(B, N, groups · out_features)``; group ``g`` fills the
    ``g``-th slice of ``out_features`` channels. The router sees the token mean of ``x``:
    ``G(x) = softmax(W_g · mean_N(x))`` per group, optionally restricted to its ``top_k`` largest
    weights and renormalized.

    At initialization ``B = 0`` and ``W_g = 0``: the adapter adds exactly 0 and routes uniformly.
    After :meth:`round_and_freeze` the ranks are integers, no longer trainable, the mask is cached
    and only the columns it keeps are computed.

    ``rank_gradient`` selects what reaches ``rank.grad`` while the ranks are searched: ``'eq9'``
    (paper Eq. 9, γ times the contribution of component ``⌊r⌋``) or ``'marginal_gain'``
    (``−``:func:`marginal_gain`; the forward is the same).
    """

    PARTS = {'lora_A': 'LoRA experts', 'lora_B': 'LoRA experts', 'router': 'routers', 'rank': 'ranks',
             'rank_frozen': 'ranks'}

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_experts: int,
        groups: int = 1,
        max_rank: int = 8,
        init_rank: float = 4.5,
        alpha: float = 1.0,
        gamma: float = 1.0,
        top_k: Optional[int] = None,
        learn_rank: bool = True,
    ) -> None:
        super().__init__()
        if num_experts < 1 or groups < 1 or max_rank < 1:
            raise UserValueError(
                f'num_experts, groups and max_rank must be ≥ 1, got {num_experts}, {groups}, {max_rank}')
        if not 1.0 <= init_rank <= max_rank:
            raise UserValueError(f'init_rank must lie in [1, max_rank={max_rank}], got {init_rank}')
        if not learn_rank and init_rank != int(init_rank):
            raise UserValueError(f'a fixed (learn_rank=False) rank must be an integer, got {init_rank}')
        if top_k is not None and not 1 <= top_k <= num_experts:
            raise UserValueError(f'top_k must lie in [1, num_experts={num_experts}], got {top_k}')
        self.in_features = in_features
        self.out_features = out_features
        self.num_experts = num_experts
        self.groups = groups
        self.max_rank = max_rank
        self.init_rank = float(init_rank)
        self._alpha = float(alpha)
        self.gamma = gamma
        self.top_k = top_k
        self.rank_gradient = 'eq9'

        columns = num_experts * max_rank
        self.lora_A = nn.Parameter(torch.empty(groups * columns, in_features))
        self.lora_B = nn.Parameter(torch.zeros(groups, columns, out_features))
        self.router = nn.Linear(in_features, groups * num_experts, bias=False)
        self.rank = nn.Parameter(torch.full((groups, num_experts), float(init_rank)))
        self.register_buffer('rank_frozen', torch.tensor(False))
        self.register_buffer('_components', torch.arange(max_rank, dtype=torch.float32), persistent=False)
        # Once frozen: the live columns' rows (G·W,), experts (G, W) and α·mask (G, W) (padding: scale 0).
        self.register_buffer('_rows', torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer('_experts', torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer('_scale', torch.empty(0), persistent=False)
        self._frozen = False
        self._compact = False
        self.reset_parameters()
        if not learn_rank:
            self.round_and_freeze()

    @property
    def rank_gradient(self) -> str:
        """``'eq9'`` or ``'marginal_gain'``: what reaches ``rank.grad`` during the search."""
        return self._rank_gradient

    @rank_gradient.setter
    def rank_gradient(self, value: str) -> None:
        if value not in RANK_GRADIENTS:
            raise ValueError(f'rank_gradient must be one of {RANK_GRADIENTS}, got {value!r}')
        self._rank_gradient = value

    @property
    def alpha(self) -> float:
        """The adapter's output scale α (fixed at construction: the frozen mask caches it)."""
        return self._alpha

    def reset_parameters(self) -> None:
        """A Kaiming-uniform (as ``nn.Linear`` and PEFT), B and router zero."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        nn.init.zeros_(self.router.weight)

    @property
    def frozen(self) -> bool:
        """Whether the ranks are rounded and fixed (the mask is hard)."""
        return self._frozen

    def rank_mask(self) -> torch.Tensor:
        """``(groups, num_experts, max_rank)`` component mask of the current ranks."""
        return fractional_rank_mask(self.rank, self.max_rank, self.gamma, self._components.to(self.rank.dtype))

    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, in_features)`` → per-sample expert weights ``(B, groups, num_experts)``."""
        mean = x.mean(dim=1)
        logits = mean.to(torch.promote_types(mean.dtype, torch.float32)) @ self.router.weight.t().to(
            torch.promote_types(mean.dtype, torch.float32))
        return routing_gates(logits.view(x.shape[0], self.groups, self.num_experts), self.top_k)

    def forward(self, x: torch.Tensor, linear: Optional[nn.Linear] = None) -> torch.Tensor:
        """``x (B, N, in_features)`` → the adapter output ``(B, N, groups · out_features)``, plus
        ``linear(x)`` when the wrapped layer is given (computed in the same node, its product
        accumulated with the adapter's in place).

        Under autocast, ``x`` is cast once to the autocast dtype for both products; routing stays in
        float32.
        """
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f'RA-MoE expects (B, N, {self.in_features}) inputs, got {tuple(x.shape)}')
        x = x.to(compute_dtype(x))
        rows = experts = gain_rank = None
        if self._frozen:
            scale = self._scale
            if self._compact:
                rows, experts = self._rows, self._experts
        else:
            eq9 = self.rank_gradient == 'eq9'
            rank = self.rank if eq9 else self.rank.detach()
            scale = fractional_rank_mask(rank, self.max_rank, self.gamma, self._components.to(rank.dtype))
            if self.alpha != 1.0:
                scale = scale * self.alpha
            if not eq9 and self.training and torch.is_grad_enabled() and self.rank.requires_grad:
                gain_rank = self.rank
        weight = linear.weight if linear is not None else None
        bias = linear.bias if linear is not None else None
        with _autocast_off(x):
            return _RAMoEFunction.apply(x, scale, self.lora_A, self.lora_B, self.router.weight, weight, bias,
                                        gain_rank, rows, experts, self.groups, self.num_experts, self.top_k)

    @torch.no_grad()
    def clamp_ranks_(self) -> None:
        """Keep every rank in ``[1, max_rank]`` (call after each rank optimizer step)."""
        self.rank.clamp_(1.0, float(self.max_rank))

    @torch.no_grad()
    def round_and_freeze(self, ranks: Optional[torch.Tensor] = None) -> None:
        """Fix the ranks at ``ranks`` (integers, ``(groups, num_experts)``; default: each rank rounded to
        the nearest integer, halves up), stop their training, cache the mask and its live columns."""
        if ranks is None:
            ranks = torch.floor(self.rank + 0.5).clamp(1.0, float(self.max_rank))
        ranks = torch.as_tensor(ranks, dtype=self.rank.dtype, device=self.rank.device)
        if ranks.shape != self.rank.shape or not ranks.is_meta and (
                not torch.equal(ranks, ranks.round()) or bool(((ranks < 1) | (ranks > self.max_rank)).any())):
            raise ValueError(f'ranks must be integers in [1, {self.max_rank}] of shape {tuple(self.rank.shape)}, '
                             f'got {ranks.tolist()}')
        self.rank.copy_(ranks)
        self.rank_frozen.fill_(True)
        self._set_frozen(True)

    def _set_frozen(self, frozen: bool) -> None:
        """Enter or leave the frozen phase. Frozen, the scale α·mask is cached; when at most half of the
        columns are live, only those are computed (``_compact``): below that the gathers cost more launches
        than the dead columns' FLOPs (docs/performance.md, "Kernels")."""
        self._frozen = frozen
        self.rank.requires_grad_(not frozen)
        device = self.rank.device
        self._rows = torch.empty(0, dtype=torch.long, device=device)
        self._experts = torch.empty(0, dtype=torch.long, device=device)
        self._scale = torch.empty(0, device=device)
        self._compact = False
        if not frozen:
            return
        rows, experts, scale = self._live_columns()
        self._compact = 2 * scale.shape[1] <= self.num_experts * self.max_rank
        if self._compact:
            self._rows, self._experts, self._scale = rows, experts, scale
        else:
            self._scale = self.rank_mask().detach() * self.alpha

    @torch.no_grad()
    def _live_columns(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per group, the columns whose mask is 1, padded to the widest group with columns of mask 0.

        Returns their rows in ``lora_A``/``lora_B`` ``(groups · W,)``, their experts ``(groups, W)`` and
        α times their mask ``(groups, W)`` (0 for padding, so padding adds nothing and gets no gradient).
        """
        columns = self.num_experts * self.max_rank
        live = self.rank_mask().detach().reshape(self.groups, columns) > 0.5
        if live.is_meta:
            order = torch.arange(columns, device=live.device).expand(self.groups, -1)
            scale = torch.full(order.shape, self.alpha, device=live.device)
        else:
            width = int(live.sum(dim=1).max())
            order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)[:, :width]
            scale = torch.take_along_dim(live, order, dim=1).to(self.lora_A.dtype) * self.alpha
        offsets = torch.arange(self.groups, device=order.device)[:, None] * columns
        return (order + offsets).reshape(-1), (order // self.max_rank).unsqueeze(0), scale

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        flag = state_dict.get(prefix + 'rank_frozen')
        if flag is not None:
            self._set_frozen(bool(flag))

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features={self.out_features}, groups={self.groups}, '
                f'num_experts={self.num_experts}, max_rank={self.max_rank}, alpha={self.alpha}, '
                f'gamma={self.gamma}, top_k={self.top_k}, frozen={self._frozen}')


def _autocast_off(x: torch.Tensor):
    """Autocast disabled on ``x``'s device while the adapter node runs (it casts explicitly)."""
    device = x.device.type
    return torch.autocast(device, enabled=False) if device in AUTOCAST_DEVICES else contextlib.nullcontext()


def ra_moe_modules(module: nn.Module) -> list[RAMoELoRA]:
    """Every RA-MoE adapter inside ``module``."""
    return [m for m in module.modules() if isinstance(m, RAMoELoRA)]


def rank_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The continuous ranks of every RA-MoE inside ``module`` (the rank optimizer's parameters)."""
    return [m.rank for m in ra_moe_modules(module)]


def total_rank(module: nn.Module, frozen: Optional[bool] = None) -> torch.Tensor:
    """Σ of every expert's rank inside ``module``, differentiable during the search phase: the one sum that the
    budget term, the rank search's log and results and the joint rounding use. ``frozen``: only the adapters
    whose ranks are (``True``) or are not (``False``) frozen yet."""
    ranks = [m.rank for m in ra_moe_modules(module) if frozen is None or m.frozen == frozen]
    if not ranks:
        return torch.zeros(())
    return torch.stack([r.sum() for r in ranks]).sum()


def initial_total_rank(module: nn.Module) -> float:
    """Σ of the initial ranks: the default rank budget ``C``."""
    return sum(m.init_rank * m.rank.numel() for m in ra_moe_modules(module))


def rank_budget_loss(module: nn.Module, target: float, beta: float = 1.0) -> torch.Tensor:
    """``β · |C − Σ_e r_e|`` (paper Eq. 10) over every RA-MoE inside ``module``."""
    return beta * (target - total_rank(module)).abs()


def clamp_ranks_(module: nn.Module) -> None:
    """Clamp the rank of every RA-MoE inside ``module`` to ``[1, max_rank]``."""
    for m in ra_moe_modules(module):
        m.clamp_ranks_()


def round_and_freeze_ranks(module: nn.Module, budget: Optional[float] = None) -> None:
    """End the rank search: round and freeze the rank of every RA-MoE inside ``module``.

    With ``budget`` the still-searched ranks are rounded jointly (:func:`~..core.rank_budget.round_to_budget`)
    so that the total of all ranks, already frozen ones included, stays ≤ ``budget``; without it
    each rank is rounded to the nearest integer, halves up.
    """
    modules = [m for m in ra_moe_modules(module) if not m.frozen]
    if budget is None or not modules:
        for m in modules:
            m.round_and_freeze()
        return
    fixed = float(total_rank(module, frozen=True).detach())
    values = torch.cat([m.rank.detach().flatten().double().cpu() for m in modules])
    high = torch.cat([torch.full((m.rank.numel(),), float(m.max_rank), dtype=torch.float64) for m in modules])
    ranks = round_to_budget(values, budget - fixed, torch.ones_like(high), high)
    for m, part in zip(modules, ranks.split([m.rank.numel() for m in modules])):
        m.round_and_freeze(part.view_as(m.rank))
