"""Lightweight temporal module (docs/method.md#temporal-module, paper Eq. 11)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .adapter import Adapter
from .ra_moe import RAMoELoRA, compute_dtype


class TemporalModule(Adapter):
    """Channel gate from the token mean: ``x · 2σ(FFN_t(x̄) + RA-MoE1D(x̄))``.

    Each token channel mixes the T input frames (a token is ``T·C'`` features projected to ``L``),
    so gating channels from the clip-level mean ``x̄ (B, 1, L)`` re-weights temporal features.
    ``FFN_t`` is ``Linear(L, L/ratio) → GELU → Linear(L/ratio, L)`` with the second layer
    zero-initialized and the adapter starts at zero, so the gate is exactly 1 at initialization
    (**Decision** in docs/method.md: the paper's ``x + sigmoid(o)`` would add 0.5 everywhere).
    """

    PARTS = {'ffn': 'temporal FFN'}

    def __init__(self, dim: int, hidden_ratio: int = 6, adapter: Optional[RAMoELoRA] = None) -> None:
        super().__init__()
        if adapter is not None and (adapter.in_features, adapter.groups * adapter.out_features) != (dim, dim):
            raise ValueError(f'temporal adapter must map {dim} → {dim} features')
        hidden = max(1, dim // hidden_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.ffn[2].weight)
        nn.init.zeros_(self.ffn[2].bias)
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, L)`` → ``(B, N, L)``."""
        pooled = x.mean(dim=1, keepdim=True)
        pooled = pooled.to(compute_dtype(pooled))       # one cast (under autocast) for the FFN and the adapter
        logits = self.ffn(pooled)
        if self.adapter is not None:
            logits = logits + self.adapter(pooled)
        return x * (2.0 * torch.sigmoid(logits))
