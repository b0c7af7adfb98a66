"""Task decoder: tokens of the shared Transformer to a task's future frames
(docs/method.md#task-encoder-and-decoder)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..tasks import halved_sizes
from .checkpointing import checkpoint_in_chunks
from .conv_blocks import UpBlock


class TaskDecoder(nn.Module):
    """``(B, H'·W', L)`` tokens (and an optional skip ``(B·F, inner, H, W)``) → ``(B, F, C, H, W)`` frames.

    A 1×1 convolution maps ``L`` to ``F·C'`` (``F = frames``, the frames of one decoded pass), time
    is folded into the batch, ``depth`` up blocks restore the exact ``(H, W)`` the encoder started
    from (the last one adds the skip before its stride-1 layer), and a 1×1 convolution gives ``C``.

    ``checkpoint`` (a plain attribute, set by the model): recompute the last, full-resolution block
    and the readout in backward one sample at a time instead of keeping their activations.
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
        self.channels = channels
        self.hidden_channels = hidden_channels
        self.inner_channels = inner_channels
        sizes = halved_sizes(height, width, depth)
        self.grid = sizes[-1]
        self.proj = nn.Conv2d(embed_dim, frames * hidden_channels, kernel_size=1)
        self.blocks = nn.ModuleList([
            UpBlock(hidden_channels, inner_channels, hidden_channels, size, norm_groups) for size in reversed(sizes[:-1])
        ])
        self.readout = nn.Conv2d(hidden_channels, channels, kernel_size=1)

    def forward(self, tokens: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, _, dim = tokens.shape
        grid_h, grid_w = self.grid
        features = self.proj(tokens.transpose(1, 2).reshape(b, dim, grid_h, grid_w))
        features = features.reshape(b * self.frames, self.hidden_channels, grid_h, grid_w)
        for block in self.blocks[:-1]:
            features = block(features)
        if self.checkpoint and torch.is_grad_enabled():
            frames = checkpoint_in_chunks(self._full_resolution, b, features, skip)
        else:
            frames = self._full_resolution(features, skip)
        return frames.reshape(b, self.frames, self.channels, *frames.shape[-2:])

    def _full_resolution(self, features: torch.Tensor, skip: Optional[torch.Tensor]) -> torch.Tensor:
        """The last block (with the skip) and the readout: ``(N, C', h, w)`` → ``(N, C, H, W)``."""
        return self.readout(self.blocks[-1](features, skip))
