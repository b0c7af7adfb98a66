"""Building blocks of the SimVP family: SimVP v1 (IncepU), SimVP v2 (gSTA) and TAU.

Each block has the structure, parameter count and forward computation of its counterpart in
OpenSTL (``openstl/modules/simvp_modules.py`` and ``openstl/models/simvp_model.py``), so that the
baselines the paper compares with are the published ones. The translators work on frames whose
time and channel axes are already stacked, ``(B, T·C, H, W)``: SimVP's hidden translator treats
the ``T·C`` stack as channels, and a multi-task wrapper can feed it any ``T·C`` projection.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn
from torch.nn import functional as F

from ..errors import UserValueError

TRANSLATOR_TYPES = ('gsta', 'tau')
"""Model types :class:`MidMetaNet` builds (SimVP v1's 'incepu' is :class:`MidIncepNet`)."""


def _init_fan_out_normal(module: nn.Module) -> None:
    """Convolution weights ``N(0, 2 / fan_out)`` and zero biases, the gSTA/TAU block init."""
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ConvSC(nn.Module):
    """``Conv → GroupNorm(2) → SiLU``, optionally halving or doubling H and W.

    Downsampling is a stride-2 convolution (``ceil(s / 2)``); upsampling is a stride-1 convolution
    to ``4·out_channels`` followed by ``PixelShuffle(2)`` (``2s``), as OpenSTL's ``ConvSC``.
    Convolution weights start from a truncated normal of std 0.02, biases from zero.

    Shapes: ``(N, in_channels, H, W)`` → ``(N, out_channels, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 downsampling: bool = False, upsampling: bool = False) -> None:
        super().__init__()
        if downsampling and upsampling:
            raise ValueError('ConvSC: downsampling and upsampling cannot both be True')
        stride = 2 if downsampling else 1
        padding = (kernel_size - stride + 1) // 2
        if upsampling:
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * 4, kernel_size, stride=1, padding=padding),
                nn.PixelShuffle(2),
            )
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.norm = nn.GroupNorm(2, out_channels)
        self.act = nn.SiLU()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class GroupConv2d(nn.Module):
    """Grouped ``Conv → GroupNorm(groups) → LeakyReLU(0.2)`` with 'same' padding (odd kernels).

    As in OpenSTL, ``groups`` falls back to 1 when it does not divide ``in_channels``; the
    GroupNorm uses the same number of groups.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__()
        if in_channels % groups != 0:
            groups = 1
        if out_channels % groups != 0:
            raise UserValueError(f'GroupConv2d: out_channels must be divisible by groups={groups}, '
                                 f'got out_channels={out_channels}')
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups)
        self.norm = nn.GroupNorm(groups, out_channels)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class gInception_ST(nn.Module):
    """SimVP v1 Inception block: a 1×1 reduction, then the sum of grouped convolutions of several
    kernel sizes (multi-scale spatial mixing at equal cost per branch).

    Shapes: ``(N, in_channels, H, W)`` → ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 incep_ker: Sequence[int] = (3, 5, 7, 11), groups: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, kernel_size=1)
        self.branches = nn.ModuleList(
            GroupConv2d(hidden_channels, out_channels, kernel, groups=groups) for kernel in incep_ker)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return sum(branch(x) for branch in self.branches)


def _large_kernel_convs(dim: int, kernel_size: int, dilation: int = 3) -> tuple[nn.Conv2d, nn.Conv2d]:
    """A large depth-wise kernel decomposed as a ``(2d−1)²`` conv then a dilated one (VAN's LKA).

    For ``kernel_size=21`` and ``d=3``: a 5×5 conv then a 7×7 conv of dilation 3.
    """
    small = 2 * dilation - 1
    dilated = kernel_size // dilation + ((kernel_size // dilation) % 2 - 1)
    return (nn.Conv2d(dim, dim, small, padding=(small - 1) // 2, groups=dim),
            nn.Conv2d(dim, dim, dilated, padding=dilation * (dilated - 1) // 2, groups=dim, dilation=dilation))


class GatedLargeKernelAttention(nn.Module):
    """gSTA's attention: large-kernel depth-wise convs, then a 1×1 conv to a value ``f`` and a
    gate ``g``; returns ``sigmoid(g) · f``."""

    def __init__(self, dim: int, kernel_size: int = 21) -> None:
        super().__init__()
        self.conv0, self.conv_spatial = _large_kernel_convs(dim, kernel_size)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.conv1(self.conv_spatial(self.conv0(x))).chunk(2, dim=1)
        return torch.sigmoid(gate) * value


class TemporalAttentionModule(nn.Module):
    """TAU's attention: the product of the intra-frame (statical) attention, large-kernel
    depth-wise convs then 1×1, and the inter-frame (dynamical) attention, a squeeze-and-excitation
    over the stacked ``T·C`` channels; the product gates the input."""

    def __init__(self, dim: int, kernel_size: int = 21, reduction: int = 16) -> None:
        super().__init__()
        self.conv0, self.conv_spatial = _large_kernel_convs(dim, kernel_size)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        squeeze = dim // max(dim // reduction, 4)
        self.fc = nn.Sequential(
            nn.Linear(dim, squeeze, bias=False),
            nn.ReLU(),
            nn.Linear(squeeze, dim, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        statical = self.conv1(self.conv_spatial(self.conv0(x)))
        dynamical = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))[:, :, None, None]
        return dynamical * statical * x


class AttentionUnit(nn.Module):
    """``1×1 → GELU → attention → 1×1`` plus the input: the attention branch of gSTA
    (:class:`GatedLargeKernelAttention`) and, with ``temporal=True``, of TAU
    (:class:`TemporalAttentionModule`)."""

    def __init__(self, dim: int, kernel_size: int = 21, temporal: bool = False) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        attention = TemporalAttentionModule if temporal else GatedLargeKernelAttention
        self.attention = attention(dim, kernel_size)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj_2(self.attention(self.activation(self.proj_1(x))))


class MixMlp(nn.Module):
    """Convolutional feed-forward: ``1×1 → depth-wise 3×3 → GELU → dropout → 1×1 → dropout``."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)
        self.drop = nn.Dropout(drop)
        self.apply(_init_fan_out_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class GASubBlock(nn.Module):
    """SimVP v2's gated spatiotemporal attention (gSTA) block, a MetaFormer over ``T·C`` channels:
    ``x + s₁·Attn(BN(x))`` then ``x + s₂·MLP(BN(x))`` with per-channel layer scales ``s``
    (initialized to ``init_value``) and stochastic depth.

    Shapes: ``(N, dim, H, W)`` → ``(N, dim, H, W)``.
    """

    def __init__(self, dim: int, kernel_size: int = 21, mlp_ratio: float = 4.0, drop: float = 0.0,
                 drop_path: float = 0.1, init_value: float = 1e-2) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = AttentionUnit(dim, kernel_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = MixMlp(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), init_value))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), init_value))
        self.apply(_init_fan_out_normal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class TAUSubBlock(GASubBlock):
    """TAU block: the gSTA block with :class:`TemporalAttentionModule` as its attention.

    As in OpenSTL, the temporal attention keeps PyTorch's default initialization (it replaces the
    spatial attention after the block's own initialization).
    """

    def __init__(self, dim: int, kernel_size: int = 21, mlp_ratio: float = 4.0, drop: float = 0.0,
                 drop_path: float = 0.1, init_value: float = 1e-2) -> None:
        super().__init__(dim, kernel_size, mlp_ratio, drop, drop_path, init_value)
        self.attn = AttentionUnit(dim, kernel_size, temporal=True)


class MetaBlock(nn.Module):
    """One translator stage: a gSTA or TAU block on ``in_channels``, then a 1×1 convolution to
    ``out_channels`` when the two differ.

    Shapes: ``(N, in_channels, H, W)`` → ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, model_type: str = 'gsta', mlp_ratio: float = 8.0,
                 drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        kind = model_type.lower()
        if kind not in TRANSLATOR_TYPES:
            raise UserValueError(f'model_type must be one of {TRANSLATOR_TYPES}, got {model_type!r}')
        block = GASubBlock if kind == 'gsta' else TAUSubBlock
        self.block = block(in_channels, kernel_size=21, mlp_ratio=mlp_ratio, drop=drop, drop_path=drop_path)
        self.reduction = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction(self.block(x))


class MidIncepNet(nn.Module):
    """SimVP v1's translator: a U-Net of :class:`gInception_ST` blocks over the stacked frames.

    ``N2`` encoder blocks (``channel_in → channel_hid → … → channel_hid``) keep their outputs but
    the last as skips; ``N2`` decoder blocks take the previous output concatenated with the
    matching skip and end at ``channel_in``.

    Shapes: ``(B, T·C, H, W)`` → ``(B, T·C, H, W)`` with ``T·C = channel_in``.
    """

    def __init__(self, channel_in: int, channel_hid: int, N2: int, incep_ker: Sequence[int] = (3, 5, 7, 11),
                 groups: int = 8) -> None:
        super().__init__()
        if N2 < 2:
            raise UserValueError(f'MidIncepNet: N2 must be at least 2, got {N2}')
        if len(incep_ker) < 2:
            raise UserValueError(f'MidIncepNet: incep_ker must have at least 2 kernel sizes, got {tuple(incep_ker)}')
        half = channel_hid // 2

        def block(c_in: int, c_out: int) -> gInception_ST:
            return gInception_ST(c_in, half, c_out, incep_ker=incep_ker, groups=groups)

        self.enc = nn.ModuleList([block(channel_in, channel_hid)] + [block(channel_hid, channel_hid)
                                                                      for _ in range(N2 - 1)])
        self.dec = nn.ModuleList([block(channel_hid, channel_hid)]
                                 + [block(2 * channel_hid, channel_hid) for _ in range(N2 - 2)]
                                 + [block(2 * channel_hid, channel_in)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.enc:
            x = layer(x)
            skips.append(x)
        skips.pop()
        x = self.dec[0](x)
        for layer in self.dec[1:]:
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return x


class MidMetaNet(nn.Module):
    """SimVP v2 / TAU translator: ``N2`` :class:`MetaBlock` stages over the stacked frames
    (``channel_in → channel_hid → … → channel_hid → channel_in``).

    Stochastic depth follows OpenSTL: ``linspace(0.01, drop_path, N2)`` for all stages but the last,
    which gets ``drop_path`` (so the first stages drop paths at 0.01 even when ``drop_path=0``).

    Shapes: ``(B, T·C, H, W)`` → ``(B, T·C, H, W)`` with ``T·C = channel_in``.
    """

    def __init__(self, channel_in: int, channel_hid: int, N2: int, model_type: str = 'gsta',
                 mlp_ratio: float = 8.0, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if N2 < 2:
            raise UserValueError(f'MidMetaNet: N2 must be at least 2, got {N2}')
        if mlp_ratio <= 1:
            raise UserValueError(f'MidMetaNet: mlp_ratio must be greater than 1, got {mlp_ratio}')
        if model_type.lower() not in TRANSLATOR_TYPES:
            raise UserValueError(f'MidMetaNet: model_type must be one of {TRANSLATOR_TYPES}, got {model_type!r}')
        rates = torch.linspace(1e-2, drop_path, N2, device='cpu').tolist()
        rates[-1] = drop_path
        widths = [channel_in] + [channel_hid] * (N2 - 1) + [channel_in]
        self.enc = nn.Sequential(*(
            MetaBlock(widths[i], widths[i + 1], model_type, mlp_ratio, drop, rates[i]) for i in range(N2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)
