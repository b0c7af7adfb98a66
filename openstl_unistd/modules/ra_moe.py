"""Rank-adaptive mixture of LoRA experts (RA-MoE, METHOD.md §3).

Each expert ``e`` is a LoRA pair ``A_e ∈ R^{d_in×R}``, ``B_e ∈ R^{R×d_out}`` with a continuous
rank ``r_e ∈ [1, R]``. The rank acts through a mask over the R components: 1 for components
``0..k−1``, ``φ`` for component ``k`` and 0 after (``k = ⌊r⌋``, ``φ = r − k``), so the expert
interpolates linearly between its rank-``k`` and rank-``k+1`` adapters. The gradient reaching
``r`` is ``γ`` times the contribution of component ``k`` (paper Eq. 9).

How the ranks learn is switched by the plain attribute :attr:`RAMoELoRA.rank_gradient`: ``'eq9'``
(the paper: autograd through the mask) or ``'marginal_gain'`` (the rank search's default, set by
the training method): minus the loss decrease that one more component of each expert would give,
see :func:`marginal_gain` and docs/method.md "Rank search".

All experts of all groups are computed at once: ``A`` is stored stacked, ``x A`` is one matmul,
the per-sample (gate ⊗ mask) coefficients scale its columns, and one batched matmul with ``B``
gives every group's output. Groups let one module serve several outputs of the same input with
their own experts and routers (the fused Q, K, V projection of a ViT is three groups).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..core.rank_budget import round_to_budget

RANK_GRADIENTS = ('eq9', 'marginal_gain')


def fractional_rank_mask(rank: torch.Tensor, max_rank: int, gamma: float = 1.0) -> torch.Tensor:
    """Mask ``(..., max_rank)`` of continuous ranks ``(...)``.

    Entry ``j`` is 1 for ``j < ⌊r⌋``, ``r − ⌊r⌋`` for ``j = ⌊r⌋`` and 0 after. The gradient with
    respect to ``r`` flows only through entry ``⌊r⌋`` and is scaled by ``gamma``; at an integer
    rank this is the one-sided derivative towards the next rank.
    """
    floor = rank.detach().floor()
    frac = rank - floor
    if gamma != 1.0:
        frac = frac * gamma - frac.detach() * (gamma - 1.0)
    component = torch.arange(max_rank, device=rank.device, dtype=rank.dtype)
    below = (component < floor[..., None]).to(rank.dtype)
    at = (component == floor[..., None]).to(rank.dtype)
    return below + at * frac[..., None]


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
    h = hidden.float().view(batch, tokens, groups, experts, max_rank) * gate.float()[:, None, :, :, None]
    g = grad_out.float().reshape(batch, tokens, groups, -1)
    per_sample = torch.einsum('bnger,bngo->bgero', h, g)
    along = (per_sample * per_sample.sum(dim=0)).sum(dim=-1)            # ⟨m_s, v⟩: (B, groups, experts, R)
    tiny = torch.finfo(along.dtype).tiny
    gain = along.sum(dim=0).pow(2) / along.pow(2).sum(dim=0).clamp_min(tiny)
    first = rank.detach().float().ceil().clamp(max=max_rank - 1)
    unused = (torch.arange(max_rank, device=rank.device) >= first[..., None]).float()
    return (gain * unused).sum(dim=-1) / unused.sum(dim=-1)


class _MarginalGainGradient(torch.autograd.Function):
    """Identity on the adapter output whose backward gives ``rank`` the gradient ``−marginal_gain``."""

    @staticmethod
    def forward(ctx, out, hidden, gate, rank):
        ctx.save_for_backward(hidden, gate, rank)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_out):
        hidden, gate, rank = ctx.saved_tensors
        return grad_out, None, None, -marginal_gain(hidden, gate, grad_out, rank).to(rank.dtype)


class RAMoELoRA(nn.Module):
    """The adapter path ``α · Σ_e G_e(x) · ((x A_e) ⊙ m_e) B_e`` of one or more groups.

    Shapes: ``x (B, N, in_features)`` → ``(B, N, groups · out_features)``; group ``g`` fills the
    ``g``-th slice of ``out_features`` channels. The router sees the token mean of ``x``:
    ``G(x) = softmax(W_g · mean_N(x))`` per group, optionally restricted to its ``top_k`` largest
    weights and renormalized.

    At initialization ``B = 0`` and ``W_g = 0``: the adapter adds exactly 0 and routes uniformly.
    After :meth:`round_and_freeze` the ranks are integers, no longer trainable, and the columns
    they mask out are skipped.

    ``rank_gradient`` selects what reaches ``rank.grad`` while the ranks are searched: ``'eq9'``
    (paper Eq. 9, γ times the contribution of component ``⌊r⌋``) or ``'marginal_gain'``
    (``−``:func:`marginal_gain`; the forward is the same).
    """

    rank_gradient: str = 'eq9'

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
            raise ValueError(
                f'num_experts, groups and max_rank must be ≥ 1, got {num_experts}, {groups}, {max_rank}')
        if not 1.0 <= init_rank <= max_rank:
            raise ValueError(f'init_rank must lie in [1, max_rank={max_rank}], got {init_rank}')
        if not learn_rank and init_rank != int(init_rank):
            raise ValueError(f'a fixed (learn_rank=False) rank must be an integer, got {init_rank}')
        if top_k is not None and not 1 <= top_k <= num_experts:
            raise ValueError(f'top_k must lie in [1, num_experts={num_experts}], got {top_k}')
        self.in_features = in_features
        self.out_features = out_features
        self.num_experts = num_experts
        self.groups = groups
        self.max_rank = max_rank
        self.init_rank = float(init_rank)
        self.alpha = alpha
        self.gamma = gamma
        self.top_k = top_k

        columns = num_experts * max_rank
        self.lora_A = nn.Parameter(torch.empty(groups * columns, in_features))
        self.lora_B = nn.Parameter(torch.zeros(groups, columns, out_features))
        self.router = nn.Linear(in_features, groups * num_experts, bias=False)
        self.rank = nn.Parameter(torch.full((groups, num_experts), float(init_rank)))
        self.register_buffer('rank_frozen', torch.tensor(False))
        self.register_buffer('_active_index', torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer('_active_valid', torch.empty(0), persistent=False)
        self._frozen = False
        self.reset_parameters()
        if not learn_rank:
            self.round_and_freeze()

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
        return fractional_rank_mask(self.rank, self.max_rank, self.gamma)

    def routing_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, in_features)`` → per-sample expert weights ``(B, groups, num_experts)``."""
        logits = self.router(x.mean(dim=1))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        gate = logits.view(x.shape[0], self.groups, self.num_experts).softmax(dim=-1)
        if self.top_k is not None and self.top_k < self.num_experts:
            values, index = gate.topk(self.top_k, dim=-1)
            gate = torch.zeros_like(gate).scatter(-1, index, values)
            gate = gate / gate.sum(dim=-1, keepdim=True)
        return gate

    def forward(self, x: torch.Tensor, base: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x (B, N, in_features)`` → the adapter output ``(B, N, groups · out_features)``, added in
        place to ``base`` when given (the wrapped layer's fresh output, which its backward does not need).

        Two matrix products: ``x A`` for every expert of every group at once, then the scaled hidden
        features times B arranged block-diagonally (group ``g``'s rows feed only its output slice), so
        the result is laid out as the fused layer's output with no permute; with ``base`` the second
        product accumulates into it (one in-place ``addmm``, no copy of the output).
        """
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f'RA-MoE expects (B, N, {self.in_features}) inputs, got {tuple(x.shape)}')
        batch, tokens, _ = x.shape
        columns = self.num_experts * self.max_rank
        eq9 = self.rank_gradient == 'eq9'
        gain = (not eq9 and not self._frozen and self.training and torch.is_grad_enabled()
                and self.rank.requires_grad)
        gate = self.routing_weights(x)
        mask = fractional_rank_mask(self.rank if eq9 else self.rank.detach(), self.max_rank, self.gamma)
        coef = (gate[..., None] * mask).reshape(batch, self.groups, columns)
        weight_a = self.lora_A.view(self.groups, columns, self.in_features)
        weight_b = self.lora_B
        if self._frozen:
            index = self._active_index
            weight_a = torch.take_along_dim(weight_a, index[..., None], dim=1)
            weight_b = torch.take_along_dim(weight_b, index[..., None], dim=1)
            coef = torch.take_along_dim(coef, index[None], dim=2) * self._active_valid
        features = F.linear(x, weight_a.reshape(-1, self.in_features))
        hidden = (features * coef.reshape(batch, 1, -1).to(features.dtype)).reshape(batch * tokens, -1)
        blocks = (self.alpha * weight_b).to(hidden.dtype)
        weight_b = blocks[0] if self.groups == 1 else torch.block_diag(*blocks.unbind(0))
        width = self.groups * self.out_features
        if base is None:
            out = torch.mm(hidden, weight_b).view(batch, tokens, width)
        else:
            out = base.reshape(batch * tokens, width).addmm_(hidden, weight_b).view(batch, tokens, width)
        if gain:
            out = _MarginalGainGradient.apply(out, features.detach(), gate.detach(), self.rank)
        return out

    def static_gates(self) -> Optional[torch.Tensor]:
        """``(groups, num_experts)`` expert weights if they do not depend on the input, else ``None``.

        Routing is input-independent with one expert per group, or while the router is all zero
        (uniform weights, e.g. untrained); only then can the adapter be merged into a weight matrix.
        """
        if self.num_experts > 1 and bool(self.router.weight.detach().ne(0).any()):
            return None
        probe = torch.zeros(1, 1, self.in_features, device=self.lora_A.device, dtype=self.lora_A.dtype)
        return self.routing_weights(probe)[0]

    @torch.no_grad()
    def delta_weight(self) -> torch.Tensor:
        """``(groups · out_features, in_features)``: the adapter as one ``nn.Linear`` weight (static routing only)."""
        gates = self.static_gates()
        if gates is None:
            raise ValueError('the adapter routes each input differently; it cannot be merged into one weight')
        columns = self.num_experts * self.max_rank
        coef = (gates[..., None] * self.rank_mask()).reshape(self.groups, columns, 1)
        weight_a = self.lora_A.view(self.groups, columns, self.in_features)
        delta = torch.einsum('gkd,gki->gdi', self.lora_B, coef * weight_a)
        return self.alpha * delta.reshape(self.groups * self.out_features, self.in_features)

    @torch.no_grad()
    def clamp_ranks_(self) -> None:
        """Keep every rank in ``[1, max_rank]`` (call after each rank optimizer step)."""
        self.rank.clamp_(1.0, float(self.max_rank))

    @torch.no_grad()
    def round_and_freeze(self, ranks: Optional[torch.Tensor] = None) -> None:
        """Fix the ranks at ``ranks`` (integers, ``(groups, num_experts)``; default: each rank rounded to
        the nearest integer, halves up), stop their training, drop dead columns."""
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
        self._frozen = frozen
        self.rank.requires_grad_(not frozen)
        if frozen:
            self._active_index, self._active_valid = self._live_columns()
        else:
            self._active_index = torch.empty(0, dtype=torch.long, device=self.rank.device)
            self._active_valid = torch.empty(0, device=self.rank.device)

    def _live_columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per group, the indices of the columns with mask 1, padded to equal length.

        Returns ``index (groups, K)`` into each group's ``num_experts · max_rank`` columns and
        ``valid (groups, K)``, 1 for a real column and 0 for padding.
        """
        live = self.rank_mask().detach().reshape(self.groups, -1) > 0.5
        if live.is_meta:
            index = torch.arange(live.shape[1], device=live.device).expand(self.groups, -1)
            return index, torch.ones(index.shape, device=live.device)
        width = int(live.sum(dim=1).max())
        order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)[:, :width]
        valid = torch.take_along_dim(live, order, dim=1).to(self.lora_A.dtype)
        return order, valid

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        flag = state_dict.get(prefix + 'rank_frozen')
        if flag is not None:
            self._set_frozen(bool(flag))

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features={self.out_features}, groups={self.groups}, '
                f'num_experts={self.num_experts}, max_rank={self.max_rank}, alpha={self.alpha}, '
                f'gamma={self.gamma}, top_k={self.top_k}, frozen={self._frozen}')


def ra_moe_modules(module: nn.Module) -> list[RAMoELoRA]:
    """Every RA-MoE adapter inside ``module``."""
    return [m for m in module.modules() if isinstance(m, RAMoELoRA)]


def rank_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The continuous ranks of every RA-MoE inside ``module`` (the rank optimizer's parameters)."""
    return [m.rank for m in ra_moe_modules(module)]


def total_rank(module: nn.Module) -> torch.Tensor:
    """Σ of every expert's rank inside ``module``, differentiable during the search phase."""
    ranks = rank_parameters(module)
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
    fixed = sum(float(m.rank.detach().sum()) for m in ra_moe_modules(module) if m.frozen)
    values = torch.cat([m.rank.detach().flatten().double().cpu() for m in modules])
    high = torch.cat([torch.full((m.rank.numel(),), float(m.max_rank), dtype=torch.float64) for m in modules])
    ranks = round_to_budget(values, budget - fixed, torch.ones_like(high), high)
    for m, part in zip(modules, ranks.split([m.rank.numel() for m in modules])):
        m.round_and_freeze(part.view_as(m.rank))
