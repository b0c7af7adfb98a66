"""The spatial ends of the SimVP family (SimVP v1 (IncepU), SimVP v2 (gSTA) and TAU): a per-frame
encoder and a per-frame decoder that adds the encoder's first feature map back before its last layer,
as in OpenSTL's ``SimVP_Model``. The translators between them are in ``modules/simvp_blocks.py``;
:class:`~openstl_unistd.models.multitask_simvp.MultiTaskSimVP` assembles the three per task (the
single-task SimVP it reduces to, checked against OpenSTL, is in tests/reference_models.py).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserValueError
from ..modules.simvp_blocks import ConvSC

TRANSLATOR_KINDS = ('incepu', 'gsta', 'tau')
"""The translators SimVP's ``model_type`` option chooses (case-insensitive, OpenSTL's spelling): IncepU
(SimVP v1), gSTA (SimVP v2) and TAU. Not to be confused with the registry's model types (``model.type``)."""


def check_spatial_depth(N_S: int) -> None:
    if not isinstance(N_S, int) or N_S < 2 or N_S % 2:
        raise UserValueError(f'N_S must be an even integer of at least 2 (a plain and a stride-2 layer '
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
