"""Single-task SimVP (v1, v2, TAU) and Earthformer, built from the package's parts exactly as OpenSTL's
``SimVP_Model`` and Earthformer's ``CuboidTransformerModel`` are: the references that tests/test_simvp.py
and tests/test_earthformer.py check against the original code's parameter counts and outputs, and that
the multi-task baselines (``MultiTaskSimVP``, ``MultiTaskEarthformer``) are checked against.

The package trains the multi-task models only; these single-task forms serve the tests alone.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from openstl_unistd.models.earthformer import EarthformerCore
from openstl_unistd.models.simvp import TRANSLATOR_KINDS, SimVPDecoder, SimVPEncoder, check_spatial_depth
from openstl_unistd.modules.cuboid_layers import build_stem_and_head, check_init_mode
from openstl_unistd.modules.simvp_blocks import MidIncepNet, MidMetaNet


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
        if kind not in TRANSLATOR_KINDS:
            raise ValueError(f'model_type must be one of {TRANSLATOR_KINDS}, got {model_type!r}')
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


class Earthformer(nn.Module):
    """Earthformer on our layout: ``forward(x: (B, T, C, H, W)) → (B, T', C, H, W)``.

    Args:
        input_shape: ``(T, H, W, C)`` of one input, as in Earthformer.
        target_shape: ``(T', H, W, C_out)`` of one target.
        base_units, initial_downsample_*, final_upsample_conv_layers, padding_type, conv_init_mode,
        down_up_linear_init_mode, norm_init_mode: Earthformer's arguments of the same names and defaults
            (the stem, the head, and also the core for the shared ones).
        core_max_shape: ``(max T, max T', max H', max W')`` of the core's inputs, to share it across
            shapes; ``None`` builds it for this model's own sizes (Earthformer's parameters exactly).
        **core_options: the remaining ``CuboidTransformerModel`` arguments, see :class:`EarthformerCore`.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        target_shape: Sequence[int],
        base_units: int = 128,
        initial_downsample_type: str = 'conv',
        initial_downsample_activation: str = 'leaky',
        initial_downsample_scale: Union[int, Sequence[int]] = 1,
        initial_downsample_conv_layers: int = 2,
        final_upsample_conv_layers: int = 2,
        initial_downsample_stack_conv_num_layers: int = 1,
        initial_downsample_stack_conv_dim_list: Optional[Sequence[int]] = None,
        initial_downsample_stack_conv_downscale_list: Sequence[int] = (1,),
        initial_downsample_stack_conv_num_conv_list: Sequence[int] = (2,),
        padding_type: str = 'ignore',
        conv_init_mode: str = '0',
        down_up_linear_init_mode: str = '0',
        norm_init_mode: str = '0',
        core_max_shape: Optional[Sequence[int]] = None,
        **core_options,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.target_shape = tuple(int(s) for s in target_shape)
        if len(self.input_shape) != 4 or len(self.target_shape) != 4:
            raise ValueError(f'input_shape and target_shape must be (T, H, W, C), got {input_shape!r} and '
                             f'{target_shape!r}')
        if self.input_shape[1:3] != self.target_shape[1:3]:
            raise ValueError(f'input and target must share (H, W), got {self.input_shape[1:3]} and '
                             f'{self.target_shape[1:3]}')
        check_init_mode('down_up_linear_init_mode', down_up_linear_init_mode, ('0', '1'))
        check_init_mode('norm_init_mode', norm_init_mode)
        self.stem, self.head, grid = build_stem_and_head(
            self.input_shape, self.target_shape, base_units,
            initial_downsample_type=initial_downsample_type,
            initial_downsample_activation=initial_downsample_activation,
            initial_downsample_scale=initial_downsample_scale,
            initial_downsample_conv_layers=initial_downsample_conv_layers,
            final_upsample_conv_layers=final_upsample_conv_layers,
            initial_downsample_stack_conv_num_layers=initial_downsample_stack_conv_num_layers,
            initial_downsample_stack_conv_dim_list=initial_downsample_stack_conv_dim_list,
            initial_downsample_stack_conv_downscale_list=initial_downsample_stack_conv_downscale_list,
            initial_downsample_stack_conv_num_conv_list=initial_downsample_stack_conv_num_conv_list,
            padding_type=padding_type, down_up_linear_init_mode=down_up_linear_init_mode,
            norm_init_mode=norm_init_mode)
        self.token_grid = grid
        if core_max_shape is None:
            core_max_shape = (grid[0], self.target_shape[0], grid[1], grid[2])
        elif len(core_max_shape) != 4:
            raise ValueError(f"core_max_shape must be (max T, max T', max H', max W'), got {core_max_shape!r}")
        self.core = EarthformerCore(*core_max_shape, base_units=base_units, padding_type=padding_type,
                                    conv_init_mode=conv_init_mode, down_up_linear_init_mode=down_up_linear_init_mode,
                                    norm_init_mode=norm_init_mode, **core_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w, c = self.input_shape
        if x.dim() != 5 or tuple(x.shape[1:]) != (t, c, h, w):
            raise ValueError(f'expected input of shape (B, T, C, H, W) = (B, {t}, {c}, {h}, {w}), '
                             f'got {tuple(x.shape)}')
        tokens = self.stem(x.permute(0, 1, 3, 4, 2))
        y = self.head(self.core(tokens, self.target_shape[0]))
        return y.permute(0, 1, 4, 2, 3)
