"""Convolution blocks of the task encoders and decoders (docs/method.md#task-encoder-and-decoder, paper Table 8)."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn


def norm_groups_for(channels: int, preferred: int = 2) -> int:
    """GroupNorm groups for ``channels``: ``preferred`` when it divides them, else their largest common
    divisor (an odd number of channels, e.g. T' = 3 under Table 8's reading, gets one group)."""
    return math.gcd(channels, preferred)


def conv_norm_act(in_channels: int, out_channels: int, stride: int, norm_groups: int) -> list[nn.Module]:
    """``Conv3x3 → GroupNorm → SiLU`` as a list of layers."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
        nn.GroupNorm(norm_groups_for(out_channels, norm_groups), out_channels),
        nn.SiLU(),
    ]


class DownBlock(nn.Module):
    """``[Conv3x3 s1 (→ inner) → GN → SiLU → Conv3x3 s2 (→ out) → GN → SiLU]``: halves H and W (ceil).

    ``inner`` is the width of the stride-1 convolution: paper Table 8 prints it as ``T'`` (the frames
    of a decoded pass), the earlier reading of this project as ``C'``. ``forward`` also returns the
    stride-1 layer's full-resolution output, the skip path's source in the first block.
    """

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, norm_groups: int = 2) -> None:
        super().__init__()
        self.keep = nn.Sequential(*conv_norm_act(in_channels, inner_channels, 1, norm_groups))
        self.down = nn.Sequential(*conv_norm_act(inner_channels, out_channels, 2, norm_groups))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, in, H, W)`` → ``((N, out, ⌈H/2⌉, ⌈W/2⌉), (N, inner, H, W))``."""
        full = self.keep(x)
        return self.down(full), full


class UpBlock(nn.Module):
    """``[ConvTranspose3x3 s2 (→ inner) → GN → SiLU → (+ skip) → Conv3x3 s1 (→ out) → GN → SiLU]``.

    The encoder's block mirrored (paper supplement: transposed convolutions replace the
    convolutions). A stride-2 transposed convolution can produce ``2s − 1`` or ``2s``; the target
    size is given so that odd sizes (e.g. 25 → 13 → 25) come back exactly. An optional ``skip`` of
    shape ``(N, inner, *output_size)`` is added before the stride-1 layer (SimVP/TAU's skip path).
    """

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, output_size: tuple[int, int],
                 norm_groups: int = 2) -> None:
        super().__init__()
        self.output_size = tuple(output_size)
        self.up = nn.ConvTranspose2d(in_channels, inner_channels, kernel_size=3, stride=2, padding=1)
        self.up_act = nn.Sequential(nn.GroupNorm(norm_groups_for(inner_channels, norm_groups), inner_channels), nn.SiLU())
        self.refine = nn.Sequential(*conv_norm_act(inner_channels, out_channels, 1, norm_groups))

    def forward(self, x: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(N, in, h, w)`` → ``(N, out, *output_size)``."""
        x = self.up_act(self.up(x, output_size=self.output_size))
        return self.refine(x if skip is None else x + skip)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}'
