"""Wrapping a ViT's frozen attention projections with RA-MoE adapters (PEFT-style injection)."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..errors import UserTypeError
from .ra_moe import RAMoELoRA


class RAMoELinear(nn.Module):
    """A frozen ``nn.Linear`` with an RA-MoE adapter beside it: ``W x + b + adapter(x)``.

    The wrapped layer is kept as ``base_layer``, untouched, so the pretrained weights keep their
    names under it and the adapter can be removed again.
    """

    def __init__(self, base_layer: nn.Linear, adapter: RAMoELoRA) -> None:
        super().__init__()
        adapter_out = adapter.groups * adapter.out_features
        if (adapter.in_features, adapter_out) != (base_layer.in_features, base_layer.out_features):
            raise ValueError(
                f'adapter maps {adapter.in_features} → {adapter_out} features but the wrapped layer maps '
                f'{base_layer.in_features} → {base_layer.out_features}')
        self.base_layer = base_layer
        self.adapter = adapter

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, in_features)`` → ``(B, N, out_features)``."""
        return self.adapter(x, linear=self.base_layer)


def inject_ra_moe(
    blocks: Iterable[nn.Module],
    qkv_experts: int = 6,
    proj_experts: int = 2,
    **adapter_kwargs,
) -> None:
    """Wrap ``attn.qkv`` and ``attn.proj`` of every timm ViT block in place.

    timm fuses Q, K and V in one ``qkv`` Linear (``L → 3·L``): its adapter has three groups, one
    per projection, each with ``qkv_experts`` experts and its own router. ``proj`` gets one group
    of ``proj_experts`` experts. ``adapter_kwargs`` go to :class:`RAMoELoRA` (``max_rank``,
    ``init_rank``, ``alpha``, ``gamma``, ``top_k``, ``learn_rank``).
    """
    for index, block in enumerate(blocks):
        attn = getattr(block, 'attn', None)
        qkv, proj = getattr(attn, 'qkv', None), getattr(attn, 'proj', None)
        if not isinstance(qkv, nn.Linear) or not isinstance(proj, nn.Linear):
            raise UserTypeError(
                f'block {index}: expected a timm ViT block with attn.qkv and attn.proj nn.Linear layers, '
                f'got qkv={type(qkv).__name__}, proj={type(proj).__name__}')
        if qkv.out_features % 3:
            raise ValueError(f'block {index}: fused qkv out_features {qkv.out_features} is not divisible by 3')
        attn.qkv = RAMoELinear(qkv, RAMoELoRA(
            qkv.in_features, qkv.out_features // 3, qkv_experts, groups=3, **adapter_kwargs))
        attn.proj = RAMoELinear(proj, RAMoELoRA(
            proj.in_features, proj.out_features, proj_experts, groups=1, **adapter_kwargs))
