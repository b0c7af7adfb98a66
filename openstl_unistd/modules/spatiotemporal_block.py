"""A frozen pretrained ViT block with UniSTD's temporal module inside it."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .temporal import TemporalModule


class SpatioTemporalBlock(nn.Module):
    """timm ViT ``Block`` with the temporal module between self-attention and the MLP.

    ``x ← x + attn(norm1(x)); x ← temporal(x); x ← x + mlp(norm2(x))`` (layer scale and drop
    path as the wrapped block has them). Without a temporal module this is the block itself.
    """

    def __init__(self, block: nn.Module, temporal: Optional[TemporalModule] = None) -> None:
        super().__init__()
        self.block = block
        self.temporal = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, L)`` → ``(B, N, L)``."""
        if self.temporal is None:
            return self.block(x)
        b = self.block
        x = x + b.drop_path1(b.ls1(b.attn(b.norm1(x))))
        x = self.temporal(x)
        return x + b.drop_path2(b.ls2(b.mlp(b.norm2(x))))
