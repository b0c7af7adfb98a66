"""The SimVP family as single-task baselines: SimVP v1 (IncepU), SimVP v2 (gSTA) and TAU.

:class:`SimVP` computes what OpenSTL's ``SimVP_Model`` computes and has its parameter count
(checked against OpenSTL in ``tests/test_simvp.py``): a per-frame spatial encoder, a translator
over the stacked frames ``(B, T·C', H', W')``, and a per-frame spatial decoder that adds the
encoder's first feature map back before its last layer. Like OpenSTL's model it maps ``T`` frames
to ``T`` frames; other output lengths are the method's business (truncation or roll-out).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..modules.simvp_blocks import ConvSC, MidIncepNet, MidMetaNet

MODEL_TYPES = ('incepu', 'gsta', 'tau')
"""SimVP v1, SimVP v2 and TAU, by their OpenSTL ``model_type`` (case-insensitive)."""


def check_spatial_depth(N_S: int) -> None:
    if not isinstance(N_S, int) or N_S < 2 or N_S % 2:
        raise ValueError(f'N_S must be an even integer of at least 2 (a plain and a stride-2 layer '
                         f'per halving), got {N_S!r}')


class SimVPEncoder(nn.Module):
    """``N_S`` :class:`ConvSC` layers alternating stride 1 and stride 2: H and W are halved
    ``N_S / 2`` times (``ceil`` each time).

    Shapes: frames ``(B·T, C, H, W)`` → ``(latent (B·T, hid_S, H', W'), skip (B·T, hid_S, H, W))``,
    the skip being the first layer's output.
    """

    def __init__(self, in_channels: int, hid_S: int, N_S: int, kernel: int = 3) -> None:
        super().__init__()
        check_spatial_depth(N_S)
        self.layers = nn.ModuleList(
            ConvSC(in_channels if i == 0 else hid_S, hid_S, kernel, downsampling=i % 2 == 1) for i in range(N_S))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.layers[0](x)
        latent = skip
        for layer in self.layers[1:]:
            latent = layer(latent)
        return latent, skip


class SimVPDecoder(nn.Module):
    """Mirror of :class:`SimVPEncoder`: ``N_S`` :class:`ConvSC` layers alternating PixelShuffle
    upsampling and stride 1; the encoder's skip is added before the last layer, then a 1×1 readout.

    Shapes: ``latent (B·T, hid_S, H', W')``, ``skip (B·T, hid_S, H, W)`` → ``(B·T, out_channels, H, W)``.
    """

    def __init__(self, hid_S: int, out_channels: int, N_S: int, kernel: int = 3) -> None:
        super().__init__()
        check_spatial_depth(N_S)
        self.layers = nn.ModuleList(ConvSC(hid_S, hid_S, kernel, upsampling=i % 2 == 0) for i in range(N_S))
        self.readout = nn.Conv2d(hid_S, out_channels, 1)

    def forward(self, latent: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            latent = layer(latent)
        if latent.shape != skip.shape:
            raise ValueError(f'SimVPDecoder: the upsampled latent {tuple(latent.shape)} does not match the '
                             f'skip {tuple(skip.shape)}')
        return self.readout(self.layers[-1](latent + skip))


class SimVP(nn.Module):
    """SimVP v1 ('incepu'), SimVP v2 ('gsta') or TAU ('tau') for frames of shape ``in_shape``.

    Args:
        in_shape: ``(T, C, H, W)``; H and W must be multiples of ``2 ** (N_S // 2)``.
        hid_S: channels of the spatial encoder and decoder.
        hid_T: channels of the translator.
        N_S: encoder (and decoder) layers, even; H and W are halved ``N_S / 2`` times.
        N_T: translator stages.
        model_type: 'incepu', 'gsta' or 'tau' (case-insensitive).
        mlp_ratio, drop, drop_path: MLP width ratio, dropout and stochastic depth of the gSTA/TAU
            blocks (unused by 'incepu').
        spatio_kernel_enc, spatio_kernel_dec: kernel sizes of the encoder and decoder convolutions.
    """

    def __init__(self, in_shape: Sequence[int], hid_S: int = 16, hid_T: int = 256, N_S: int = 4, N_T: int = 4,
                 model_type: str = 'gsta', mlp_ratio: float = 8.0, drop: float = 0.0, drop_path: float = 0.0,
                 spatio_kernel_enc: int = 3, spatio_kernel_dec: int = 3) -> None:
        super().__init__()
        if len(in_shape) != 4:
            raise ValueError(f'in_shape must be (T, C, H, W), got {tuple(in_shape)}')
        check_spatial_depth(N_S)
        T, C, H, W = (int(v) for v in in_shape)
        factor = 2 ** (N_S // 2)
        if H % factor or W % factor:
            raise ValueError(f'in_shape: H and W must be multiples of 2 ** (N_S // 2) = {factor} for N_S={N_S}, '
                             f'got H={H}, W={W}')
        kind = model_type.lower()
        if kind not in MODEL_TYPES:
            raise ValueError(f'model_type must be one of {MODEL_TYPES}, got {model_type!r}')
        self.in_shape = (T, C, H, W)
        self.model_type = kind
        self.encoder = SimVPEncoder(C, hid_S, N_S, spatio_kernel_enc)
        self.decoder = SimVPDecoder(hid_S, C, N_S, spatio_kernel_dec)
        if kind == 'incepu':
            self.translator = MidIncepNet(T * hid_S, hid_T, N_T)
        else:
            self.translator = MidMetaNet(T * hid_S, hid_T, N_T, kind, mlp_ratio, drop, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` → ``(B, T, C, H, W)``: the next ``T`` frames."""
        T, C = self.in_shape[:2]
        if x.dim() != 5 or tuple(x.shape[1:3]) != (T, C):
            raise ValueError(f'SimVP: expected input (B, T={T}, C={C}, H, W), got {tuple(x.shape)}')
        B, _, _, H, W = x.shape
        latent, skip = self.encoder(x.reshape(B * T, C, H, W))
        _, C_, H_, W_ = latent.shape
        z = self.translator(latent.reshape(B, T * C_, H_, W_))
        y = self.decoder(z.reshape(B * T, C_, H_, W_), skip)
        return y.reshape(B, T, C, H, W)
