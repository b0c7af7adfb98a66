"""Convolution blocks of the task encoders and decoders (METHOD.md §1)."""
from __future__ import annotations

import torch
from torch import nn


def conv_norm_act(in_channels: int, out_channels: int, stride: int, norm_groups: int) -> list[nn.Module]:
    """``Conv3x3 → GroupNorm → SiLU`` as a list of layers."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
        nn.GroupNorm(norm_groups, out_channels),
        nn.SiLU(),
    ]


class DownBlock(nn.Sequential):
    """``[Conv3x3 s1 → GN → SiLU → Conv3x3 s2 → GN → SiLU]``: halves H and W (ceil)."""

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int = 2) -> None:
        super().__init__(
            *conv_norm_act(in_channels, out_channels, 1, norm_groups),
            *conv_norm_act(out_channels, out_channels, 2, norm_groups),
        )


class UpBlock(nn.Module):
    """``[ConvTranspose3x3 s2 → GN → SiLU → Conv3x3 s1 → GN → SiLU]`` to an exact output size.

    A stride-2 transposed convolution can produce ``2s − 1`` or ``2s``; the target size is
    given so that odd sizes (e.g. 25 → 13 → 25) come back exactly.
    """

    def __init__(self, channels: int, output_size: tuple[int, int], norm_groups: int = 2) -> None:
        super().__init__()
        self.output_size = tuple(output_size)
        self.up = nn.ConvTranspose2d(channels, channels, kernel_size=3, stride=2, padding=1)
        self.up_act = nn.Sequential(nn.GroupNorm(norm_groups, channels), nn.SiLU())
        self.refine = nn.Sequential(*conv_norm_act(channels, channels, 1, norm_groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` → ``(N, C, *output_size)``."""
        x = self.up_act(self.up(x, output_size=self.output_size))
        return self.refine(x)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}'
