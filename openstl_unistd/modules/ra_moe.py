"""Rank-adaptive mixture of LoRA experts (RA-MoE, METHOD.md §3).

Each expert ``e`` is a LoRA pair ``A_e ∈ R^{d_in×R}``, ``B_e ∈ R^{R×d_out}`` with a continuous
rank ``r_e ∈ [1, R]``. The rank acts through a mask over the R components: 1 for components
``0..k−1``, ``φ`` for component ``k`` and 0 after (``k = ⌊r⌋``, ``φ = r − k``), so the expert
interpolates linearly between its rank-``k`` and rank-``k+1`` adapters. The gradient reaching
``r`` is ``γ`` times the contribution of component ``k`` (paper Eq. 9).

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


class RAMoELoRA(nn.Module):
    """The adapter path ``α · Σ_e G_e(x) · ((x A_e) ⊙ m_e) B_e`` of one or more groups.

    Shapes: ``x (B, N, in_features)`` → ``(B, N, groups · out_features)``; group ``g`` fills the
    ``g``-th slice of ``out_features`` channels. The router sees the token mean of ``x``:
    ``G(x) = softmax(W_g · mean_N(x))`` per group, optionally restricted to its ``top_k`` largest
    weights and renormalized.

    At initialization ``B = 0`` and ``W_g = 0``: the adapter adds exactly 0 and routes uniformly.
    After :meth:`round_and_freeze` the ranks are integers, no longer trainable, and the columns
    they mask out are skipped.
    """

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
        coef = (self.routing_weights(x)[..., None] * self.rank_mask()).reshape(batch, self.groups, columns)
        weight_a = self.lora_A.view(self.groups, columns, self.in_features)
        weight_b = self.lora_B
        if self._frozen:
            index = self._active_index
            weight_a = torch.take_along_dim(weight_a, index[..., None], dim=1)
            weight_b = torch.take_along_dim(weight_b, index[..., None], dim=1)
            coef = torch.take_along_dim(coef, index[None], dim=2) * self._active_valid
        hidden = F.linear(x, weight_a.reshape(-1, self.in_features))
        hidden = (hidden * coef.reshape(batch, 1, -1).to(hidden.dtype)).reshape(batch * tokens, -1)
        blocks = (self.alpha * weight_b).to(hidden.dtype)
        weight_b = blocks[0] if self.groups == 1 else torch.block_diag(*blocks.unbind(0))
        width = self.groups * self.out_features
        if base is None:
            return torch.mm(hidden, weight_b).view(batch, tokens, width)
        return base.reshape(batch * tokens, width).addmm_(hidden, weight_b).view(batch, tokens, width)

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
    def round_and_freeze(self) -> None:
        """Round each rank to the nearest integer (halves up), stop its training, drop dead columns."""
        self.rank.copy_(torch.floor(self.rank + 0.5).clamp(1.0, float(self.max_rank)))
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


def round_and_freeze_ranks(module: nn.Module) -> None:
    """End the rank search: round and freeze the rank of every RA-MoE inside ``module``."""
    for m in ra_moe_modules(module):
        m.round_and_freeze()
