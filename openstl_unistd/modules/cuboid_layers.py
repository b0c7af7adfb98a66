"""Earthformer's non-attention layers: position embedding, FFN, patch merging, upsampling, stems and heads.

All tensors are channels-last ``(B, T, H, W, C)``, as in Earthformer (Gao et al., NeurIPS 2022). The
initialisation follows Earthformer's scheme ``"0"`` (see :func:`init_linear`, :func:`init_conv`); layers
that Earthformer leaves at PyTorch's default initialisation (the stem and head convolutions) are left
there too, so that a freshly built model starts from the same distribution.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserValueError

PADDING_TYPES = ('ignore', 'zeros', 'nearest')
"""``ignore``: zero-pad and mask the padding out of attention; ``zeros``: zero-pad, attend to it;
``nearest``: resize by nearest-neighbour interpolation instead of padding."""

_ACTIVATIONS = {
    'leaky': lambda: nn.LeakyReLU(0.1),
    'gelu': nn.GELU,
    'relu': nn.ReLU,
    'elu': nn.ELU,
    'identity': nn.Identity,
    'sigmoid': nn.Sigmoid,
    'tanh': nn.Tanh,
    'softplus': nn.Softplus,
    'softrelu': nn.Softplus,
    'softsign': nn.Softsign,
}


def activation(name: str) -> nn.Module:
    """The activation Earthformer names ``name`` (``leaky`` is LeakyReLU with slope 0.1)."""
    if name not in _ACTIVATIONS:
        raise UserValueError(f'activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}')
    return _ACTIVATIONS[name]()


def norm_layer(name: str, dim: int) -> nn.Module:
    """Channel-last normalisation; only Earthformer's ``layer_norm`` (eps 1e-5) is provided."""
    if name != 'layer_norm':
        raise UserValueError(f"norm_layer must be 'layer_norm', got {name!r}")
    return nn.LayerNorm(dim, eps=1e-5)


def check_padding_type(padding_type: str) -> None:
    if padding_type not in PADDING_TYPES:
        raise UserValueError(f'padding_type must be one of {PADDING_TYPES}, got {padding_type!r}')


def check_init_mode(argument: str, mode: str, allowed: Sequence[str] = ('0',)) -> None:
    if mode not in allowed:
        raise UserValueError(f'{argument} must be one of {tuple(allowed)}, got {mode!r}')


def init_linear(layer: nn.Linear, mode: str = '0') -> None:
    """Earthformer's linear init: ``"0"`` Kaiming-normal fan-in (linear gain), ``"1"`` fan-out leaky; zero bias."""
    if mode == '0':
        nn.init.kaiming_normal_(layer.weight, mode='fan_in', nonlinearity='linear')
    elif mode == '1':
        nn.init.kaiming_normal_(layer.weight, a=0.1, mode='fan_out', nonlinearity='leaky_relu')
    else:
        raise UserValueError(f"linear init mode must be '0' or '1', got {mode!r}")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def init_conv(layer: nn.Module) -> None:
    """Earthformer's conv init ``"0"``: Kaiming-normal fan-out for LeakyReLU(0.1); zero bias."""
    nn.init.kaiming_normal_(layer.weight, a=0.1, mode='fan_out', nonlinearity='leaky_relu')
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def init_norm(layer: nn.Module) -> None:
    """Unit scale and zero shift."""
    if isinstance(layer, (nn.LayerNorm, nn.GroupNorm)) and layer.weight is not None:
        nn.init.ones_(layer.weight)
        nn.init.zeros_(layer.bias)


def pad_thw(x: torch.Tensor, pad_t: int, pad_h: int, pad_w: int, padding_type: str,
            t_pad_left: bool = False) -> torch.Tensor:
    """Grow ``(B, T, H, W, C)`` by ``pad_*`` frames/rows/columns (at the end; time at the start if asked).

    ``nearest`` resizes the whole tensor to the grown size instead, as Earthformer does.
    """
    if pad_t == 0 and pad_h == 0 and pad_w == 0:
        return x
    b, t, h, w, c = x.shape
    if padding_type == 'nearest':
        resized = F.interpolate(x.permute(0, 4, 1, 2, 3), size=(t + pad_t, h + pad_h, w + pad_w))
        return resized.permute(0, 2, 3, 4, 1)
    time = (pad_t, 0) if t_pad_left else (0, pad_t)
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h) + time)


def unpad_thw(x: torch.Tensor, pad_t: int, pad_h: int, pad_w: int, padding_type: str) -> torch.Tensor:
    """Undo :func:`pad_thw` for end padding: crop, or resize back for ``nearest``."""
    if pad_t == 0 and pad_h == 0 and pad_w == 0:
        return x
    b, t, h, w, c = x.shape
    if padding_type == 'nearest':
        resized = F.interpolate(x.permute(0, 4, 1, 2, 3), size=(t - pad_t, h - pad_h, w - pad_w))
        return resized.permute(0, 2, 3, 4, 1)
    return x[:, :t - pad_t, :h - pad_h, :w - pad_w, :].contiguous()


class CuboidPositionEmbedding(nn.Module):
    """Learned position embedding added to ``(B, T, H, W, C)``, for any ``T, H, W`` up to the maxima.

    ``t+h+w``: one table per axis, summed. ``t+hw``: a time table plus one table over the
    ``max_t``-independent grid index ``h · max_w + w``.
    """

    def __init__(self, dim: int, max_t: int, max_h: int, max_w: int, kind: str = 't+hw') -> None:
        super().__init__()
        if kind not in ('t+h+w', 't+hw'):
            raise UserValueError(f"pos_embed_type must be 't+h+w' or 't+hw', got {kind!r}")
        self.dim, self.max_t, self.max_h, self.max_w, self.kind = dim, max_t, max_h, max_w, kind
        self.t_embed = nn.Embedding(max_t, dim)
        if kind == 't+h+w':
            self.h_embed = nn.Embedding(max_h, dim)
            self.w_embed = nn.Embedding(max_w, dim)
        else:
            self.hw_embed = nn.Embedding(max_h * max_w, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for table in self.children():
            nn.init.trunc_normal_(table.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, t, h, w, c = x.shape
        if t > self.max_t or h > self.max_h or w > self.max_w or c != self.dim:
            raise ValueError(f'position embedding of (T, H, W, C) ≤ ({self.max_t}, {self.max_h}, {self.max_w}) '
                             f'and C = {self.dim} got input of shape {tuple(x.shape)}')
        device = x.device
        t_code = self.t_embed(torch.arange(t, device=device)).reshape(t, 1, 1, c)
        if self.kind == 't+h+w':
            h_code = self.h_embed(torch.arange(h, device=device)).reshape(1, h, 1, c)
            w_code = self.w_embed(torch.arange(w, device=device)).reshape(1, 1, w, c)
            return x + t_code + h_code + w_code
        grid = torch.arange(h, device=device)[:, None] * self.max_w + torch.arange(w, device=device)
        return x + t_code + self.hw_embed(grid)

    def extra_repr(self) -> str:
        return f'dim={self.dim}, max_thw=({self.max_t}, {self.max_h}, {self.max_w}), kind={self.kind!r}'


class PositionwiseFFN(nn.Module):
    """Pre-norm residual FFN: ``x + drop(fc2(drop(act(fc1(norm(x))))))`` (gated: ``act(gate(·)) · fc1(·)``)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0, gated: bool = False,
                 activation_name: str = 'leaky', norm: str = 'layer_norm', linear_init_mode: str = '0',
                 norm_init_mode: str = '0') -> None:
        super().__init__()
        check_init_mode('norm_init_mode', norm_init_mode)
        self.linear_init_mode = linear_init_mode
        self.norm = norm_layer(norm, dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc1_gate = nn.Linear(dim, hidden_dim) if gated else None
        self.act = activation(activation_name)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.activation_dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.fc1, self.fc1_gate, self.fc2):
            if layer is not None:
                init_linear(layer, self.linear_init_mode)
        init_norm(self.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        if self.fc1_gate is not None:
            y = self.act(self.fc1_gate(y)) * self.fc1(y)
        else:
            y = self.act(self.fc1(y))
        y = self.fc2(self.activation_dropout(y))
        return x + self.dropout(y)


class PatchMerging3D(nn.Module):
    """``(B, T, H, W, C)`` → ``(B, ⌈T/dt⌉, ⌈H/dh⌉, ⌈W/dw⌉, out_dim)``: concat each ``dt×dh×dw`` patch, norm, project.

    The concatenated vector is ordered ``(dt, dh, dw, C)``. Sizes that do not divide are padded first
    (``padding_type``, see :data:`PADDING_TYPES`).
    """

    def __init__(self, dim: int, out_dim: int, downsample: Sequence[int] = (1, 2, 2), norm: str = 'layer_norm',
                 padding_type: str = 'nearest', linear_init_mode: str = '0', norm_init_mode: str = '0') -> None:
        super().__init__()
        check_padding_type(padding_type)
        check_init_mode('norm_init_mode', norm_init_mode)
        self.downsample = tuple(int(d) for d in downsample)
        if len(self.downsample) != 3 or min(self.downsample) < 1:
            raise UserValueError(f'downsample must be three positive factors (t, h, w), got {downsample!r}')
        self.dim, self.out_dim, self.padding_type = dim, out_dim, padding_type
        self.linear_init_mode = linear_init_mode
        merged = math.prod(self.downsample) * dim
        self.norm = norm_layer(norm, merged)
        self.reduction = nn.Linear(merged, out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_linear(self.reduction, self.linear_init_mode)
        init_norm(self.norm)

    def out_shape(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """``(T, H, W)`` after merging (ceil division)."""
        dt, dh, dw = self.downsample
        return -(-t // dt), -(-h // dh), -(-w // dw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        dt, dh, dw = self.downsample
        nt, nh, nw = self.out_shape(t, h, w)
        x = pad_thw(x, nt * dt - t, nh * dh - h, nw * dw - w, self.padding_type)
        x = x.reshape(b, nt, dt, nh, dh, nw, dw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
        x = x.reshape(b, nt, nh, nw, dt * dh * dw * c)
        return self.reduction(self.norm(x))

    def extra_repr(self) -> str:
        return f'dim={self.dim}, out_dim={self.out_dim}, downsample={self.downsample}'


class SpatialUpsample(nn.Module):
    """``(B, T, h, w, C)`` → ``(B, T, H, W, out_dim)``: nearest-neighbour resize of each frame, then a conv.

    Earthformer's ``Upsample3DLayer`` without temporal upsampling (the only kind its models use).
    """

    def __init__(self, dim: int, out_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.conv = nn.Conv2d(dim, out_dim, kernel_size, padding=kernel_size // 2)
        init_conv(self.conv)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, t, h, w, c = x.shape
        frames = x.reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        frames = self.conv(F.interpolate(frames, size=tuple(size), mode='nearest'))
        return frames.permute(0, 2, 3, 1).reshape(b, t, size[0], size[1], self.out_dim)


def conv_stack(in_dim: int, out_dim: int, layers: int, groups: int, activation_name: str) -> nn.Sequential:
    """``layers × [Conv3x3 → GroupNorm(groups) → act]``, the first from ``in_dim``; PyTorch default init."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Conv2d(in_dim if i == 0 else out_dim, out_dim, kernel_size=3, padding=1),
                    nn.GroupNorm(groups, out_dim), activation(activation_name)]
    return nn.Sequential(*modules)


def _per_frame(convs: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Apply 2-D ``convs`` to every frame of ``(B, T, H, W, C)``."""
    if len(convs) == 0:
        return x
    b, t, h, w, c = x.shape
    y = convs(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2))
    return y.permute(0, 2, 3, 1).reshape(b, t, h, w, -1)


def _scale3(scale: Union[int, Sequence[int]], argument: str) -> tuple[int, int, int]:
    if isinstance(scale, int):
        return 1, scale, scale
    scale = tuple(int(s) for s in scale)
    if len(scale) == 2:
        return (1,) + scale
    if len(scale) == 3:
        return scale
    raise UserValueError(f'{argument} must be an int, (h, w) or (t, h, w), got {scale!r}')


class ConvStem(nn.Module):
    """Earthformer's ``conv`` initial encoder: ``K × [Conv3x3 → GN(16) → act]`` per frame, then patch merging.

    ``(B, T, H, W, C_in)`` → ``(B, T', H', W', dim)`` with ``(T', H', W') = ⌈(T, H, W) / downsample_scale⌉``.
    """

    def __init__(self, in_channels: int, dim: int, downsample_scale: Union[int, Sequence[int]] = 1,
                 num_conv_layers: int = 2, activation_name: str = 'leaky', padding_type: str = 'nearest',
                 linear_init_mode: str = '0', norm_init_mode: str = '0') -> None:
        super().__init__()
        if num_conv_layers == 0 and in_channels != dim:
            raise UserValueError(f'initial_downsample_conv_layers=0 needs input channels = base_units, got '
                                 f'{in_channels} and {dim}')
        self.convs = conv_stack(in_channels, dim, num_conv_layers, 16, activation_name)
        self.merge = PatchMerging3D(dim, dim, _scale3(downsample_scale, 'initial_downsample_scale'),
                                    padding_type=padding_type, linear_init_mode=linear_init_mode,
                                    norm_init_mode=norm_init_mode)
        self.out_dim = dim

    def out_shapes(self, t: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """``[(T', H', W', dim)]``: the shape after each merge (one here)."""
        return [self.merge.out_shape(t, h, w) + (self.out_dim,)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(_per_frame(self.convs, x))


class StackConvStem(nn.Module):
    """Earthformer's ``stack_conv`` initial encoder: stages of ``[K_i × (Conv3x3 → GN → act)] → merge ×s_i``.

    Stage ``i`` maps to ``dims[i]`` channels (GroupNorm with ``max(1, dims[i] // 4)`` groups) and
    merges ``1 × s_i × s_i`` patches.
    """

    def __init__(self, in_channels: int, dims: Sequence[int], downscales: Sequence[int], num_convs: Sequence[int],
                 activation_name: str = 'leaky', padding_type: str = 'nearest', linear_init_mode: str = '0',
                 norm_init_mode: str = '0') -> None:
        super().__init__()
        if not (len(dims) == len(downscales) == len(num_convs) >= 1):
            raise UserValueError(f'stack conv stem needs as many dims, downscales and conv counts (≥ 1), got '
                                 f'{list(dims)}, {list(downscales)}, {list(num_convs)}')
        self.dims = tuple(dims)
        self.convs = nn.ModuleList([
            conv_stack(in_channels if i == 0 else dims[i - 1], dims[i], num_convs[i], max(1, dims[i] // 4),
                       activation_name)
            for i in range(len(dims))])
        self.merges = nn.ModuleList([
            PatchMerging3D(dims[i], dims[i], (1, downscales[i], downscales[i]), padding_type=padding_type,
                           linear_init_mode=linear_init_mode, norm_init_mode=norm_init_mode)
            for i in range(len(dims))])
        self.out_dim = dims[-1]

    def out_shapes(self, t: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """``(T, H, W, C)`` after each stage."""
        shapes = []
        for merge, dim in zip(self.merges, self.dims):
            t, h, w = merge.out_shape(t, h, w)
            shapes.append((t, h, w, dim))
        return shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for convs, merge in zip(self.convs, self.merges):
            x = merge(_per_frame(convs, x))
        return x


class ConvHead(nn.Module):
    """Earthformer's ``conv`` final decoder and output projection.

    ``(B, T, h, w, dim)`` → nearest upsample to ``(H, W)`` + conv → ``K × [Conv3x3 → GN(16) → act]`` →
    linear to ``out_channels``: ``(B, T, H, W, out_channels)``.
    """

    def __init__(self, dim: int, out_channels: int, height: int, width: int, num_conv_layers: int = 2,
                 activation_name: str = 'leaky', linear_init_mode: str = '0') -> None:
        super().__init__()
        self.size = (height, width)
        self.upsample = SpatialUpsample(dim, dim, kernel_size=3)
        self.convs = conv_stack(dim, dim, num_conv_layers, 16, activation_name)
        self.proj = nn.Linear(dim, out_channels)
        init_linear(self.proj, linear_init_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(_per_frame(self.convs, self.upsample(x, self.size)))


class StackConvHead(nn.Module):
    """Earthformer's ``stack_conv`` final decoder: the mirror of a :class:`StackConvStem`, then a linear.

    Stage ``i`` upsamples to the stem's stage sizes in reverse (the last to ``(H, W)``), keeping its
    input channels, then applies ``num_convs[::-1][i]`` convs to the stem's channels in reverse.
    """

    def __init__(self, stem_shapes: Sequence[Sequence[int]], height: int, width: int, num_convs: Sequence[int],
                 out_channels: int, activation_name: str = 'leaky', linear_init_mode: str = '0') -> None:
        super().__init__()
        sizes = [tuple(shape[1:3]) for shape in stem_shapes[:-1]][::-1] + [(height, width)]
        dims = [shape[-1] for shape in stem_shapes][::-1]
        convs = tuple(num_convs)[::-1]
        self.sizes = sizes
        self.upsamples = nn.ModuleList()
        self.convs = nn.ModuleList()
        in_dim = dims[0]
        for i, dim in enumerate(dims):
            self.upsamples.append(SpatialUpsample(in_dim, in_dim, kernel_size=3))
            self.convs.append(conv_stack(in_dim, dim, convs[i], max(1, dim // 4), activation_name))
            in_dim = dim
        self.proj = nn.Linear(in_dim, out_channels)
        init_linear(self.proj, linear_init_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for upsample, convs, size in zip(self.upsamples, self.convs, self.sizes):
            x = _per_frame(convs, upsample(x, size))
        return self.proj(x)


def build_stem_and_head(
    input_shape: Sequence[int],
    target_shape: Sequence[int],
    base_units: int,
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
    down_up_linear_init_mode: str = '0',
    norm_init_mode: str = '0',
) -> tuple[nn.Module, nn.Module, tuple[int, int, int]]:
    """Stem, head and the stem's output grid ``(T, H', W')`` for Earthformer's ``initial_downsample_*`` options.

    ``input_shape = (T, H, W, C_in)``, ``target_shape = (T', H, W, C_out)``; the stem ends with
    ``base_units`` channels.
    """
    t_in, height, width, c_in = input_shape
    c_out = target_shape[3]
    if initial_downsample_type == 'conv':
        stem = ConvStem(c_in, base_units, initial_downsample_scale, initial_downsample_conv_layers,
                        initial_downsample_activation, padding_type, down_up_linear_init_mode, norm_init_mode)
        head = ConvHead(base_units, c_out, height, width, final_upsample_conv_layers,
                        initial_downsample_activation, down_up_linear_init_mode)
    elif initial_downsample_type == 'stack_conv':
        layers = initial_downsample_stack_conv_num_layers
        dims = initial_downsample_stack_conv_dim_list
        dims = [base_units] * layers if dims is None else list(dims)[:layers]
        downscales = list(initial_downsample_stack_conv_downscale_list)[:layers]
        num_convs = list(initial_downsample_stack_conv_num_conv_list)[:layers]
        if dims[-1] != base_units:
            raise UserValueError(f'initial_downsample_stack_conv_dim_list must end with base_units = {base_units}, '
                                 f'got {dims}')
        stem = StackConvStem(c_in, dims, downscales, num_convs, initial_downsample_activation, padding_type,
                             down_up_linear_init_mode, norm_init_mode)
        head = StackConvHead(stem.out_shapes(t_in, height, width), height, width, num_convs, c_out,
                             initial_downsample_activation, down_up_linear_init_mode)
    else:
        raise UserValueError(f"initial_downsample_type must be 'conv' or 'stack_conv', got {initial_downsample_type!r}")
    grid = stem.out_shapes(t_in, height, width)[-1][:3]
    return stem, head, grid
