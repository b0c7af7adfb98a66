"""Task encoder: a task's past frames to tokens for the shared Transformer (docs/method.md#task-encoder-and-decoder)."""
from __future__ import annotations

import torch
from torch import nn

from ..tasks import halved_sizes
from .checkpointing import checkpoint_in_chunks
from .conv_blocks import DownBlock


class TaskEncoder(nn.Module):
    """``(B, T, C, H, W)`` frames → ``(B, H'·W', L)`` tokens and the full-resolution skip ``(B·T, inner, H, W)``.

    Time is folded into the batch, ``depth`` down blocks map each frame to ``(C', H', W')`` (each
    block: a stride-1 convolution to ``inner_channels``, then a stride-2 one to ``C'``), time is
    unfolded into channels ``(B, T·C', H', W')`` and a 1×1 convolution projects to ``L``. The first
    block's stride-1 output is returned for the decoder's skip path (SimVP's ``enc1``).

    ``checkpoint`` (a plain attribute, set by the model): recompute the first, full-resolution
    block in backward one sample at a time instead of keeping its activations.
    """

    checkpoint: bool = False

    def __init__(
        self,
        frames: int,
        channels: int,
        height: int,
        width: int,
        depth: int,
        embed_dim: int,
        hidden_channels: int = 64,
        inner_channels: int = 64,
        norm_groups: int = 2,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.hidden_channels = hidden_channels
        self.grid = halved_sizes(height, width, depth)[-1]
        self.blocks = nn.ModuleList([
            DownBlock(channels if i == 0 else hidden_channels, inner_channels, hidden_channels, norm_groups)
            for i in range(depth)
        ])
        self.proj = nn.Conv2d(frames * hidden_channels, embed_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, c, h, w = x.shape
        features = x.reshape(b * t, c, h, w)
        skip = None
        for i, block in enumerate(self.blocks):
            if i == 0 and self.checkpoint and torch.is_grad_enabled():
                features, full = checkpoint_in_chunks(block, b, features)
            else:
                features, full = block(features)
            skip = full if skip is None else skip
        grid_h, grid_w = features.shape[-2:]
        features = features.reshape(b, t * self.hidden_channels, grid_h, grid_w)
        return self.proj(features).flatten(2).transpose(1, 2), skip
