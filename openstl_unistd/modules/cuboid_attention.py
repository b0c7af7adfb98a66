"""Cuboid attention of Earthformer (Gao et al., NeurIPS 2022): self- and cross-attention inside cuboids.

A ``(B, T, H, W, C)`` tensor is cut into non-overlapping cuboids of ``bT × bH × bW`` tokens, either
local (``'l'``: contiguous blocks) or dilated (``'d'``: every ``T/bT``-th token, and so on) per axis;
attention runs inside every cuboid at once, as one batched matmul. Optional extras, all as in
Earthformer: a shifted-window offset, a learned relative position bias per head, and ``N`` global
vectors that every cuboid attends to and that attend to all tokens.

Two deliberate departures from the reference code, both outside the SEVIR and ENSO configurations:
the relative position bias of a cuboid clipped to a smaller input is looked up by the clipped
cuboid's true offsets (Earthformer slices the index of the unclipped cuboid, which only matches
when the clipped axis is the first non-singleton one, e.g. for axial cuboids), and with
``padding_type='ignore'`` the global vectors skip the padded tokens in cuboid order (Earthformer
builds that mask in raster order). The cross-attention mask is also defined for ``zeros`` and
``nearest`` padding, where the reference raises.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import UserValueError
from .cuboid_layers import (PositionwiseFFN, check_init_mode, check_padding_type, init_linear, init_norm, norm_layer,
                            pad_thw, unpad_thw)

Size3 = tuple[int, int, int]
Strategy = tuple[str, str, str]


def _check_strategy(strategy: Sequence[str], argument: str = 'strategy') -> Strategy:
    strategy = tuple(strategy)
    if len(strategy) != 3 or any(s not in ('l', 'd') for s in strategy):
        raise UserValueError(f"{argument} must be three of 'l' (local) / 'd' (dilated), got {strategy!r}")
    return strategy


def cuboid_reorder(x: torch.Tensor, cuboid_size: Size3, strategy: Strategy) -> torch.Tensor:
    """``(B, T, H, W, C)`` → ``(B, num_cuboids, bT·bH·bW, C)``; sizes must divide.

    Cuboids are numbered in (t, h, w) raster order and so are the tokens inside a cuboid.
    """
    b, *sizes, c = x.shape
    split, outer, inner = [], [], []
    for axis, (size, block, kind) in enumerate(zip(sizes, cuboid_size, strategy)):
        if kind == 'l':
            split += [size // block, block]
            outer.append(1 + 2 * axis)
            inner.append(2 + 2 * axis)
        else:
            split += [block, size // block]
            outer.append(2 + 2 * axis)
            inner.append(1 + 2 * axis)
    x = x.reshape(b, *split, c).permute(0, *outer, *inner, 7)
    volume = cuboid_size[0] * cuboid_size[1] * cuboid_size[2]
    return x.reshape(b, -1, volume, c)


def cuboid_reorder_back(x: torch.Tensor, cuboid_size: Size3, strategy: Strategy, shape: Size3) -> torch.Tensor:
    """Inverse of :func:`cuboid_reorder` for an original ``(T, H, W) = shape``."""
    b, _, _, c = x.shape
    counts = [size // block for size, block in zip(shape, cuboid_size)]
    x = x.reshape(b, *counts, *cuboid_size, c)
    order = [0]
    for axis, kind in enumerate(strategy):
        order += [1 + axis, 4 + axis] if kind == 'l' else [4 + axis, 1 + axis]
    return x.permute(*order, 7).reshape(b, *shape, c)


def fit_cuboid(shape: Size3, cuboid_size: Size3, shift_size: Size3, strategy: Strategy) -> tuple[Size3, Size3]:
    """Cuboid and shift for an input of ``shape``: a cuboid axis at least as long as the input is clipped
    to it and not shifted; dilated axes are never shifted."""
    cuboid, shift = list(cuboid_size), list(shift_size)
    for axis in range(3):
        if strategy[axis] == 'd':
            shift[axis] = 0
        if shape[axis] <= cuboid_size[axis]:
            cuboid[axis], shift[axis] = shape[axis], 0
    return tuple(cuboid), tuple(shift)


def _shift_regions(length: int, block: int, shift: int) -> torch.Tensor:
    """Region label per position of a rolled axis: positions that wrapped around differ from the rest."""
    index = torch.arange(length)
    if shift == 0:
        return torch.zeros(length, dtype=torch.long)
    return torch.where(index >= length - shift, 2, torch.where(index >= length - block, 1, 0))


def _valid_tokens(shape: Size3, pads: Size3, t_pad_left: bool = False) -> torch.Tensor:
    """``(1, T+pt, H+ph, W+pw, 1)`` bool, false on the padding."""
    valid = torch.ones((1, *shape, 1), dtype=torch.bool)
    time = (pads[0], 0) if t_pad_left else (0, pads[0])
    return F.pad(valid, (0, 0, 0, pads[2], 0, pads[1]) + time)


@lru_cache(maxsize=256)
def self_attention_mask(shape: Size3, cuboid_size: Size3, shift_size: Size3, strategy: Strategy, padding_type: str,
                        device: torch.device) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``(mask (num_cuboids, vol, vol), valid (num_cuboids, vol))`` for a cuboid self-attention, or ``None`` each
    where nothing is masked.

    ``mask`` keeps pairs in the same shifted-window region whose tokens are both real (padding is only
    masked for ``padding_type='ignore'``); ``valid`` marks real tokens.
    """
    pads = tuple((-size) % block for size, block in zip(shape, cuboid_size))
    padded = tuple(size + pad for size, pad in zip(shape, pads))
    shifted = any(s > 0 for s in shift_size)
    masks_padding = padding_type == 'ignore' and any(p > 0 for p in pads)
    if not shifted and not masks_padding:
        return None, None
    labels = [_shift_regions(length, block, shift) for length, block, shift in zip(padded, cuboid_size, shift_size)]
    region = labels[0][:, None, None] * 9 + labels[1][None, :, None] * 3 + labels[2][None, None, :]
    region = cuboid_reorder(region[None, ..., None], cuboid_size, strategy)[0, ..., 0]
    mask = region[:, :, None] == region[:, None, :]
    valid = None
    if masks_padding:
        valid = _valid_tokens(shape, pads)
        if shifted:
            valid = torch.roll(valid, shifts=tuple(-s for s in shift_size), dims=(1, 2, 3))
        valid = cuboid_reorder(valid, cuboid_size, strategy)[0, ..., 0]
        mask = mask & valid[:, :, None] & valid[:, None, :]
    return mask.to(device), (valid.to(device) if valid is not None else None)


@lru_cache(maxsize=256)
def cross_attention_mask(x_frames: int, mem_frames: int, height: int, width: int, n_temporal: int,
                         cuboid_hw: tuple[int, int], shift_hw: tuple[int, int], strategy: Strategy, padding_type: str,
                         device: torch.device) -> Optional[torch.Tensor]:
    """``(num_cuboids, x_vol, mem_vol)`` mask of a cuboid cross-attention, or ``None`` where nothing is masked.

    The memory is padded in time at the start, the queries at the end; pairs must share a
    shifted-window region, and with ``padding_type='ignore'`` both tokens must be real.
    """
    pad_h, pad_w = (-height) % cuboid_hw[0], (-width) % cuboid_hw[1]
    x_pads = ((-x_frames) % n_temporal, pad_h, pad_w)
    mem_pads = ((-mem_frames) % n_temporal, pad_h, pad_w)
    shifted = any(s > 0 for s in shift_hw)
    masks_padding = padding_type == 'ignore' and (any(x_pads) or any(mem_pads))
    if not shifted and not masks_padding:
        return None
    x_cuboid = ((x_frames + x_pads[0]) // n_temporal,) + tuple(cuboid_hw)
    mem_cuboid = ((mem_frames + mem_pads[0]) // n_temporal,) + tuple(cuboid_hw)
    if masks_padding:
        x_valid = _valid_tokens((x_frames, height, width), x_pads)
        mem_valid = _valid_tokens((mem_frames, height, width), mem_pads, t_pad_left=True)
        if shifted:
            x_valid = torch.roll(x_valid, shifts=(-shift_hw[0], -shift_hw[1]), dims=(2, 3))
            mem_valid = torch.roll(mem_valid, shifts=(-shift_hw[0], -shift_hw[1]), dims=(2, 3))
    else:
        x_valid = torch.ones((1, x_frames + x_pads[0], height + pad_h, width + pad_w, 1), dtype=torch.bool)
        mem_valid = torch.ones((1, mem_frames + mem_pads[0], height + pad_h, width + pad_w, 1), dtype=torch.bool)
    x_valid = cuboid_reorder(x_valid, x_cuboid, strategy)[0, ..., 0]
    mem_valid = cuboid_reorder(mem_valid, mem_cuboid, strategy)[0, ..., 0]
    rows = _shift_regions(height + pad_h, cuboid_hw[0], shift_hw[0])
    cols = _shift_regions(width + pad_w, cuboid_hw[1], shift_hw[1])
    region = (rows[:, None] * 3 + cols[None, :]).expand(n_temporal, -1, -1)
    region = cuboid_reorder(region[None, ..., None], (1,) + tuple(cuboid_hw), strategy)[0, ..., 0]
    num_cuboids, area = region.shape
    same = (region[:, :, None] == region[:, None, :]).reshape(num_cuboids, 1, area, 1, area)
    mask = (same & x_valid.reshape(num_cuboids, -1, area, 1, 1) & mem_valid.reshape(num_cuboids, 1, 1, -1, area))
    return mask.reshape(num_cuboids, x_cuboid[0] * area, mem_cuboid[0] * area).to(device)


def _grid_coords(size: Size3) -> torch.Tensor:
    """``(3, prod(size))`` integer coordinates of a ``size`` grid in raster order."""
    axes = [torch.arange(n) for n in size]
    return torch.stack(torch.meshgrid(*axes, indexing='ij')).flatten(1)


def _relative_index(query_size: Size3, key_size: Size3, span: Size3) -> torch.Tensor:
    """Index into a ``(2·span_t−1)(2·span_h−1)(2·span_w−1)`` table of every query–key offset."""
    offset = _grid_coords(query_size)[:, :, None] - _grid_coords(key_size)[:, None, :]
    t, h, w = (offset[i] + span[i] - 1 for i in range(3))
    return (t * (2 * span[1] - 1) + h) * (2 * span[2] - 1) + w


@lru_cache(maxsize=256)
def self_relative_index(cuboid_size: Size3, table_size: Size3, device: torch.device) -> torch.Tensor:
    """``(vol, vol)`` bias-table index of a cuboid whose table was built for cuboids of ``table_size``."""
    return _relative_index(cuboid_size, cuboid_size, table_size).to(device)


@lru_cache(maxsize=256)
def cross_relative_index(x_frames: int, mem_frames: int, cuboid_hw: tuple[int, int], max_temporal_relative: int,
                         device: torch.device) -> torch.Tensor:
    """``(x_vol, mem_vol)`` bias-table index of a cross-attention cuboid pair."""
    span = (max_temporal_relative,) + tuple(cuboid_hw)
    return _relative_index((x_frames,) + tuple(cuboid_hw), (mem_frames,) + tuple(cuboid_hw), span).to(device)


def masked_softmax(score: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last axis that gives masked-out (``False``) entries zero weight, as Earthformer does."""
    if mask is None:
        return torch.softmax(score, dim=-1)
    fill = -1e4 if score.dtype == torch.float16 else -1e18
    return torch.softmax(score.masked_fill(~mask, fill), dim=-1) * mask


def _with_globals(mask: Optional[torch.Tensor], num_global: int) -> Optional[torch.Tensor]:
    """Extend a key mask with ``num_global`` always-visible keys."""
    if mask is None:
        return None
    return torch.cat([mask, mask.new_ones(mask.shape[:-1] + (num_global,))], dim=-1)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, n, vol, heads·d)`` → ``(B, heads, n, vol, d)``."""
    b, n, vol, c = x.shape
    return x.reshape(b, n, vol, heads, c // heads).permute(0, 3, 1, 2, 4)


def _split(x: torch.Tensor, parts: int, heads: int) -> torch.Tensor:
    """``(B, n, vol, parts·heads·d)`` → ``(parts, B, heads, n, vol, d)``."""
    b, n, vol, c = x.shape
    return x.reshape(b, n, vol, parts, heads, c // (parts * heads)).permute(3, 0, 4, 1, 2, 5)


class CuboidSelfAttention(nn.Module):
    """Cuboid self-attention: ``(B, T, H, W, C)`` (+ global vectors ``(B, N, r·C)``) → the attention update.

    The input is layer-normed first; the caller adds the residual. Returns ``(update, global_update)``,
    the second ``None`` without global vectors. ``cuboid_size`` is clipped to smaller inputs at run time.
    """

    def __init__(self, dim: int, num_heads: int, cuboid_size: Sequence[int] = (2, 7, 7),
                 shift_size: Sequence[int] = (0, 0, 0), strategy: Sequence[str] = ('l', 'l', 'l'),
                 padding_type: str = 'ignore', qkv_bias: bool = False, qk_scale: Optional[float] = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, use_final_proj: bool = True, norm: str = 'layer_norm',
                 use_global_vector: bool = False, use_global_self_attn: bool = False, separate_global_qkv: bool = False,
                 global_dim_ratio: int = 1, use_relative_pos: bool = True, attn_linear_init_mode: str = '0',
                 ffn_linear_init_mode: str = '0', norm_init_mode: str = '0') -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise UserValueError(f'dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}')
        if global_dim_ratio != 1 and not separate_global_qkv:
            raise UserValueError(f'global_dim_ratio != 1 needs separate_global_qkv=True, got '
                                 f'global_dim_ratio={global_dim_ratio}, separate_global_qkv={separate_global_qkv}')
        check_padding_type(padding_type)
        check_init_mode('norm_init_mode', norm_init_mode)
        self.dim, self.num_heads = dim, num_heads
        self.cuboid_size = tuple(int(s) for s in cuboid_size)
        self.shift_size = tuple(int(s) for s in shift_size)
        self.strategy = _check_strategy(strategy)
        self.padding_type = padding_type
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.use_global_vector = use_global_vector
        self.use_global_self_attn = use_global_self_attn
        self.separate_global_qkv = separate_global_qkv
        self.global_dim_ratio = global_dim_ratio
        self.attn_linear_init_mode, self.ffn_linear_init_mode = attn_linear_init_mode, ffn_linear_init_mode

        self.norm = norm_layer(norm, dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        if use_relative_pos:
            bt, bh, bw = self.cuboid_size
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * bt - 1) * (2 * bh - 1) * (2 * bw - 1), num_heads))
        else:
            self.relative_position_bias_table = None
        global_dim = global_dim_ratio * dim
        self.global_norm = norm_layer(norm, global_dim) if use_global_vector else None
        self.global_qkv = None
        self.l2g_q = self.l2g_global_kv = self.g2l_global_q = self.g2l_k = self.g2l_v = self.g2g_global_qkv = None
        if use_global_vector and separate_global_qkv:
            self.l2g_q = nn.Linear(dim, dim, bias=qkv_bias)
            self.l2g_global_kv = nn.Linear(global_dim, 2 * dim, bias=qkv_bias)
            self.g2l_global_q = nn.Linear(global_dim, dim, bias=qkv_bias)
            self.g2l_k = nn.Linear(dim, dim, bias=qkv_bias)
            self.g2l_v = nn.Linear(dim, global_dim, bias=qkv_bias)
            if use_global_self_attn:
                self.g2g_global_qkv = nn.Linear(global_dim, 3 * global_dim, bias=qkv_bias)
        elif use_global_vector:
            self.global_qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.global_attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim) if use_final_proj else None
        self.global_proj = nn.Linear(global_dim, global_dim) if use_final_proj and use_global_vector else None
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Earthformer's init; the global output projection keeps PyTorch's default, as there."""
        if self.relative_position_bias_table is not None:
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        for layer in (self.qkv, self.global_qkv, self.l2g_q, self.l2g_global_kv, self.g2l_global_q, self.g2l_k,
                      self.g2l_v, self.g2g_global_qkv):
            if layer is not None:
                init_linear(layer, self.attn_linear_init_mode)
        if self.proj is not None:
            init_linear(self.proj, self.ffn_linear_init_mode)
        init_norm(self.norm)
        if self.global_norm is not None:
            init_norm(self.global_norm)

    def forward(self, x: torch.Tensor, global_vectors: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if (global_vectors is not None) != self.use_global_vector:
            raise ValueError(f'global_vectors must be given exactly when use_global_vector is True '
                             f'(use_global_vector={self.use_global_vector})')
        x = self.norm(x)
        b, t, h, w, c = x.shape
        if c != self.dim:
            raise ValueError(f'expected {self.dim} channels, got input of shape {tuple(x.shape)}')
        cuboid, shift = fit_cuboid((t, h, w), self.cuboid_size, self.shift_size, self.strategy)
        pads = tuple((-size) % block for size, block in zip((t, h, w), cuboid))
        padded = (t + pads[0], h + pads[1], w + pads[2])
        x = pad_thw(x, *pads, self.padding_type)
        if any(shift):
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        tokens = cuboid_reorder(x, cuboid, self.strategy)
        _, n, vol, _ = tokens.shape
        mask, valid = self_attention_mask((t, h, w), cuboid, shift, self.strategy, self.padding_type, x.device)
        heads = self.num_heads
        q, k, v = _split(self.qkv(tokens), 3, heads)
        q = q * self.scale
        score = q @ k.transpose(-2, -1)
        if self.relative_position_bias_table is not None:
            index = self_relative_index(cuboid, self.cuboid_size, x.device)
            bias = self.relative_position_bias_table[index.reshape(-1)].reshape(vol, vol, heads)
            score = score + bias.permute(2, 0, 1).unsqueeze(1)

        new_global = None
        if self.use_global_vector:
            out, new_global = self._with_global_vectors(tokens, global_vectors, q, k, v, score, mask, valid)
        else:
            out = self.attn_drop(masked_softmax(score, mask)) @ v
        out = out.permute(0, 2, 3, 1, 4).reshape(b, n, vol, c)
        if self.proj is not None:
            out = self.proj_drop(self.proj(out))
            if new_global is not None:
                new_global = self.proj_drop(self.global_proj(new_global))
        out = cuboid_reorder_back(out, cuboid, self.strategy, padded)
        if any(shift):
            out = torch.roll(out, shifts=shift, dims=(1, 2, 3))
        return unpad_thw(out, *pads, self.padding_type), new_global

    def _with_global_vectors(self, tokens, global_vectors, q, k, v, score, mask, valid):
        """Local tokens attend to their cuboid and the global vectors; global vectors attend to all tokens."""
        b, n, vol, c = tokens.shape
        heads, scale = self.num_heads, self.scale
        g = self.global_norm(global_vectors)
        num_global = g.shape[1]
        global_head_dim = self.global_dim_ratio * c // heads
        g_tokens = g.unsqueeze(1)
        if self.separate_global_qkv:
            l2g_q = _heads(self.l2g_q(tokens), heads) * scale
            l2g_k, l2g_v = _split(self.l2g_global_kv(g_tokens), 2, heads)
            g2l_q = _heads(self.g2l_global_q(g_tokens), heads).squeeze(2) * scale
            g2l_k = _heads(self.g2l_k(tokens), heads)
            g2l_v = _heads(self.g2l_v(tokens), heads)
            if self.use_global_self_attn:
                g2g_q, g2g_k, g2g_v = _split(self.g2g_global_qkv(g_tokens), 3, heads)
                g2g_q = g2g_q.squeeze(2) * scale
        else:
            g_q, g_k, g_v = _split(self.global_qkv(g_tokens), 3, heads)
            g_q = g_q.squeeze(2) * scale
            l2g_q, l2g_k, l2g_v = q, g_k, g_v
            g2l_q, g2l_k, g2l_v = g_q, k, v
            g2g_q, g2g_k, g2g_v = g_q, g_k, g_v

        score = torch.cat([score, l2g_q @ l2g_k.transpose(-2, -1)], dim=-1)
        values = torch.cat([v, l2g_v.expand(b, heads, n, num_global, c // heads)], dim=3)
        out = self.attn_drop(masked_softmax(score, _with_globals(mask, num_global))) @ values

        g2l_k = g2l_k.reshape(b, heads, n * vol, c // heads)
        g2l_v = g2l_v.reshape(b, heads, n * vol, global_head_dim)
        g_score = g2l_q @ g2l_k.transpose(-2, -1)
        g_mask = valid.reshape(-1) if valid is not None else None
        if self.use_global_self_attn:
            g_score = torch.cat([g_score, g2g_q @ g2g_k.squeeze(2).transpose(-2, -1)], dim=-1)
            g_mask = _with_globals(g_mask, num_global)
            g2l_v = torch.cat([g2l_v, g2g_v.reshape(b, heads, num_global, global_head_dim)], dim=2)
        new_global = self.global_attn_drop(masked_softmax(g_score, g_mask)) @ g2l_v
        return out, new_global.permute(0, 2, 1, 3).reshape(b, num_global, self.global_dim_ratio * c)

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, heads={self.num_heads}, cuboid={self.cuboid_size}, shift={self.shift_size}, '
                f'strategy={self.strategy}, padding={self.padding_type!r}')


class CuboidCrossAttention(nn.Module):
    """Cuboid cross-attention of decoder tokens ``(B, T_x, H, W, C)`` to encoder memory ``(B, T_mem, H, W, C)``.

    Both are cut into the same number of cuboids: ``n_temporal`` along time (the memory padded at the
    start, the queries at the end) and ``cuboid_hw`` in space; each query cuboid attends to its memory
    cuboid and, optionally, to the memory's global vectors. The queries are layer-normed first; the
    caller adds the residual. Frames must be fewer than ``max_temporal_relative``.
    """

    def __init__(self, dim: int, num_heads: int, n_temporal: int = 1, cuboid_hw: Sequence[int] = (7, 7),
                 shift_hw: Sequence[int] = (0, 0), strategy: Sequence[str] = ('d', 'l', 'l'),
                 padding_type: str = 'ignore', cross_last_n_frames: Optional[int] = None, qkv_bias: bool = False,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 max_temporal_relative: int = 50, norm: str = 'layer_norm', use_global_vector: bool = True,
                 separate_global_qkv: bool = False, global_dim_ratio: int = 1, use_relative_pos: bool = True,
                 attn_linear_init_mode: str = '0', ffn_linear_init_mode: str = '0', norm_init_mode: str = '0') -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise UserValueError(f'dim must be divisible by num_heads, got dim={dim}, num_heads={num_heads}')
        if n_temporal < 1:
            raise UserValueError(f'n_temporal must be ≥ 1, got {n_temporal}')
        if global_dim_ratio != 1 and not separate_global_qkv:
            raise UserValueError(f'global_dim_ratio != 1 needs separate_global_qkv=True, got '
                                 f'global_dim_ratio={global_dim_ratio}, separate_global_qkv={separate_global_qkv}')
        check_padding_type(padding_type)
        check_init_mode('norm_init_mode', norm_init_mode)
        self.dim, self.num_heads, self.n_temporal = dim, num_heads, n_temporal
        self.strategy = _check_strategy(strategy)
        self.cuboid_hw = tuple(int(s) for s in cuboid_hw)
        self.shift_hw = tuple(0 if self.strategy[1 + i] == 'd' else int(shift_hw[i]) for i in range(2))
        self.padding_type = padding_type
        self.cross_last_n_frames = cross_last_n_frames
        self.max_temporal_relative = max_temporal_relative
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.use_global_vector = use_global_vector
        self.separate_global_qkv = separate_global_qkv
        self.attn_linear_init_mode, self.ffn_linear_init_mode = attn_linear_init_mode, ffn_linear_init_mode

        self.norm = norm_layer(norm, dim)
        if use_relative_pos:
            bh, bw = self.cuboid_hw
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * max_temporal_relative - 1) * (2 * bh - 1) * (2 * bw - 1), num_heads))
        else:
            self.relative_position_bias_table = None
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv_proj = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        if use_global_vector and separate_global_qkv:
            self.l2g_q = nn.Linear(dim, dim, bias=qkv_bias)
            self.l2g_global_kv = nn.Linear(global_dim_ratio * dim, 2 * dim, bias=qkv_bias)
        else:
            self.l2g_q = self.l2g_global_kv = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.relative_position_bias_table is not None:
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        for layer in (self.q_proj, self.kv_proj, self.l2g_q, self.l2g_global_kv):
            if layer is not None:
                init_linear(layer, self.attn_linear_init_mode)
        init_linear(self.proj, self.ffn_linear_init_mode)
        init_norm(self.norm)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mem_global_vectors: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        if self.use_global_vector and mem_global_vectors is None:
            raise ValueError('mem_global_vectors are required: this layer has use_global_vector=True')
        if self.cross_last_n_frames is not None:
            mem = mem[:, -min(self.cross_last_n_frames, mem.shape[1]):]
        x = self.norm(x)
        b, t_x, h, w, c = x.shape
        t_mem = mem.shape[1]
        if mem.shape[0] != b or mem.shape[2:] != x.shape[2:]:
            raise ValueError(f'memory of shape {tuple(mem.shape)} does not match queries of shape {tuple(x.shape)} '
                             f'in batch, H, W or C')
        if max(t_x, t_mem) >= self.max_temporal_relative:
            raise ValueError(f'frames must be < max_temporal_relative = {self.max_temporal_relative}, '
                             f'got T_x={t_x}, T_mem={t_mem}')
        n_t, (bh, bw), shift = self.n_temporal, self.cuboid_hw, self.shift_hw
        pad_h, pad_w = (-h) % bh, (-w) % bw
        pad_x, pad_mem = (-t_x) % n_t, (-t_mem) % n_t
        mem = pad_thw(mem, pad_mem, pad_h, pad_w, self.padding_type, t_pad_left=True)
        x = pad_thw(x, pad_x, pad_h, pad_w, self.padding_type)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(2, 3))
            mem = torch.roll(mem, shifts=(-shift[0], -shift[1]), dims=(2, 3))
        padded = tuple(x.shape[1:4])
        x_cuboid = (x.shape[1] // n_t, bh, bw)
        mem_cuboid = (mem.shape[1] // n_t, bh, bw)
        x_tokens = cuboid_reorder(x, x_cuboid, self.strategy)
        mem_tokens = cuboid_reorder(mem, mem_cuboid, self.strategy)
        _, n, x_vol, _ = x_tokens.shape
        mem_vol = mem_tokens.shape[2]
        mask = cross_attention_mask(t_x, t_mem, h, w, n_t, self.cuboid_hw, shift, self.strategy, self.padding_type,
                                    x.device)
        heads = self.num_heads
        k, v = _split(self.kv_proj(mem_tokens), 2, heads)
        q = _heads(self.q_proj(x_tokens), heads) * self.scale
        score = q @ k.transpose(-2, -1)
        if self.relative_position_bias_table is not None:
            index = cross_relative_index(x_cuboid[0], mem_cuboid[0], self.cuboid_hw, self.max_temporal_relative,
                                         x.device)
            bias = self.relative_position_bias_table[index.reshape(-1)].reshape(x_vol, mem_vol, heads)
            score = score + bias.permute(2, 0, 1).unsqueeze(1)
        if self.use_global_vector:
            g_tokens = mem_global_vectors.unsqueeze(1)
            num_global = g_tokens.shape[2]
            if self.separate_global_qkv:
                l2g_q = _heads(self.l2g_q(x_tokens), heads) * self.scale
                g_k, g_v = _split(self.l2g_global_kv(g_tokens), 2, heads)
            else:
                l2g_q = q
                g_k, g_v = _split(self.kv_proj(g_tokens), 2, heads)
            score = torch.cat([score, l2g_q @ g_k.transpose(-2, -1)], dim=-1)
            v = torch.cat([v, g_v.expand(b, heads, n, num_global, c // heads)], dim=3)
            mask = _with_globals(mask, num_global)
        out = self.attn_drop(masked_softmax(score, mask)) @ v
        out = self.proj_drop(self.proj(out.permute(0, 2, 3, 1, 4).reshape(b, n, x_vol, c)))
        out = cuboid_reorder_back(out, x_cuboid, self.strategy, padded)
        if any(shift):
            out = torch.roll(out, shifts=shift, dims=(2, 3))
        return unpad_thw(out, pad_x, pad_h, pad_w, self.padding_type)

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, heads={self.num_heads}, n_temporal={self.n_temporal}, cuboid_hw={self.cuboid_hw}, '
                f'shift_hw={self.shift_hw}, strategy={self.strategy}, padding={self.padding_type!r}')


def _maybe_checkpoint(enabled: bool, function, *args):
    return checkpoint(function, *args, use_reentrant=False) if enabled else function(*args)


def _ffn(dim: int, dropout: float, gated: bool, activation_name: str, norm: str, linear_init_mode: str,
         norm_init_mode: str) -> PositionwiseFFN:
    return PositionwiseFFN(dim, 4 * dim, dropout, gated, activation_name, norm, linear_init_mode, norm_init_mode)


class CuboidSelfAttentionBlock(nn.Module):
    """A stack of cuboid self-attentions with residuals and pre-norm FFNs: ``(x, g) → (x, g)``.

    ``use_inter_ffn``: an FFN after every attention; otherwise one FFN after the last. Global vectors
    get their own FFNs when ``use_global_vector_ffn``. ``checkpoint_level`` ≥ 1 recomputes the FFNs
    and ≥ 2 also the attentions in the backward pass (training only).
    """

    def __init__(self, dim: int, num_heads: int, cuboid_sizes: Sequence[Sequence[int]],
                 shift_sizes: Sequence[Sequence[int]], strategies: Sequence[Sequence[str]],
                 padding_type: str = 'ignore', qkv_bias: bool = False, qk_scale: Optional[float] = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, ffn_drop: float = 0.0, activation: str = 'leaky',
                 gated_ffn: bool = False, norm: str = 'layer_norm', use_inter_ffn: bool = False,
                 use_global_vector: bool = False, use_global_vector_ffn: bool = True, use_global_self_attn: bool = False,
                 separate_global_qkv: bool = False, global_dim_ratio: int = 1, checkpoint_level: int = 1,
                 use_relative_pos: bool = True, use_final_proj: bool = True, attn_linear_init_mode: str = '0',
                 ffn_linear_init_mode: str = '0', norm_init_mode: str = '0') -> None:
        super().__init__()
        if not (len(cuboid_sizes) == len(shift_sizes) == len(strategies) >= 1):
            raise UserValueError(f'a self-attention block needs as many cuboid sizes, shift sizes and strategies (≥ 1), '
                                 f'got {list(cuboid_sizes)}, {list(shift_sizes)}, {list(strategies)}')
        self.use_inter_ffn = use_inter_ffn
        self.use_global_vector = use_global_vector
        self.checkpoint_level = int(checkpoint_level)
        self.attns = nn.ModuleList([
            CuboidSelfAttention(dim, num_heads, cuboid, shift, strategy, padding_type, qkv_bias, qk_scale, attn_drop,
                                proj_drop, use_final_proj, norm, use_global_vector, use_global_self_attn,
                                separate_global_qkv, global_dim_ratio, use_relative_pos, attn_linear_init_mode,
                                ffn_linear_init_mode, norm_init_mode)
            for cuboid, shift, strategy in zip(cuboid_sizes, shift_sizes, strategies)])
        num_ffn = len(self.attns) if use_inter_ffn else 1
        self.ffns = nn.ModuleList([_ffn(dim, ffn_drop, gated_ffn, activation, norm, ffn_linear_init_mode,
                                        norm_init_mode) for _ in range(num_ffn)])
        if use_global_vector and use_global_vector_ffn:
            self.global_ffns = nn.ModuleList([_ffn(global_dim_ratio * dim, ffn_drop, gated_ffn, activation, norm,
                                                   ffn_linear_init_mode, norm_init_mode) for _ in range(num_ffn)])
        else:
            self.global_ffns = None

    def _feed_forward(self, i: int, x: torch.Tensor, g: Optional[torch.Tensor]):
        recompute = self.checkpoint_level >= 1 and self.training
        x = _maybe_checkpoint(recompute, self.ffns[i], x)
        if self.global_ffns is not None:
            g = _maybe_checkpoint(recompute, self.global_ffns[i], g)
        return x, g

    def forward(self, x: torch.Tensor, global_vectors: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        recompute = self.checkpoint_level >= 2 and self.training
        g = global_vectors
        for i, attn in enumerate(self.attns):
            x_update, g_update = _maybe_checkpoint(recompute, attn, x, g)
            x = x + x_update
            if g_update is not None:
                g = g + g_update
            if self.use_inter_ffn:
                x, g = self._feed_forward(i, x, g)
        if not self.use_inter_ffn:
            x, g = self._feed_forward(0, x, g)
        return x, g


class CuboidCrossAttentionBlock(nn.Module):
    """A stack of cuboid cross-attentions with residuals and pre-norm FFNs: ``(x, mem, g_mem) → x``."""

    def __init__(self, dim: int, num_heads: int, cuboid_hws: Sequence[Sequence[int]],
                 shift_hws: Sequence[Sequence[int]], strategies: Sequence[Sequence[str]], n_temporals: Sequence[int],
                 padding_type: str = 'ignore', cross_last_n_frames: Optional[int] = None, qkv_bias: bool = False,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 ffn_drop: float = 0.0, activation: str = 'leaky', gated_ffn: bool = False, norm: str = 'layer_norm',
                 use_inter_ffn: bool = True, max_temporal_relative: int = 50, checkpoint_level: int = 1,
                 use_relative_pos: bool = True, use_global_vector: bool = False, separate_global_qkv: bool = False,
                 global_dim_ratio: int = 1, attn_linear_init_mode: str = '0', ffn_linear_init_mode: str = '0',
                 norm_init_mode: str = '0') -> None:
        super().__init__()
        if not (len(cuboid_hws) == len(shift_hws) == len(strategies) == len(n_temporals) >= 1):
            raise UserValueError(f'a cross-attention block needs as many cuboid sizes, shifts, strategies and n_temporal '
                                 f'(≥ 1), got {list(cuboid_hws)}, {list(shift_hws)}, {list(strategies)}, '
                                 f'{list(n_temporals)}')
        self.use_inter_ffn = use_inter_ffn
        self.checkpoint_level = int(checkpoint_level)
        self.attns = nn.ModuleList([
            CuboidCrossAttention(dim, num_heads, n_temporal, cuboid_hw, shift_hw, strategy, padding_type,
                                 cross_last_n_frames, qkv_bias, qk_scale, attn_drop, proj_drop, max_temporal_relative,
                                 norm, use_global_vector, separate_global_qkv, global_dim_ratio, use_relative_pos,
                                 attn_linear_init_mode, ffn_linear_init_mode, norm_init_mode)
            for cuboid_hw, shift_hw, strategy, n_temporal in zip(cuboid_hws, shift_hws, strategies, n_temporals)])
        num_ffn = len(self.attns) if use_inter_ffn else 1
        self.ffns = nn.ModuleList([_ffn(dim, ffn_drop, gated_ffn, activation, norm, ffn_linear_init_mode,
                                        norm_init_mode) for _ in range(num_ffn)])

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mem_global_vectors: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        recompute_attn = self.checkpoint_level >= 2 and self.training
        recompute_ffn = self.checkpoint_level >= 1 and self.training
        for i, attn in enumerate(self.attns):
            x = x + _maybe_checkpoint(recompute_attn, attn, x, mem, mem_global_vectors)
            if self.use_inter_ffn:
                x = _maybe_checkpoint(recompute_ffn, self.ffns[i], x)
        if not self.use_inter_ffn:
            x = _maybe_checkpoint(recompute_ffn, self.ffns[0], x)
        return x


_LOCAL = ('l', 'l', 'l')
_DILATED = ('d', 'd', 'd')
_NO_SHIFT = (0, 0, 0)


def self_attention_pattern(name: str, shape: Sequence[int]) -> tuple[list, list, list]:
    """Earthformer's named self-attention patterns for a ``(T, H, W, C)`` input.

    Returns ``(cuboid_sizes, strategies, shift_sizes)``. Names: ``full``, ``axial``, ``divided_st``,
    ``video_swin`` / ``video_swin_{P}x{M}``, ``spatial_lg_v1`` / ``spatial_lg_{M}``, ``axial_space_dilate_{K}``.
    """
    t, h, w = shape[:3]
    if name == 'full':
        return [(t, h, w)], [_LOCAL], [_NO_SHIFT]
    if name == 'axial':
        return [(t, 1, 1), (1, h, 1), (1, 1, w)], [_LOCAL] * 3, [_NO_SHIFT] * 3
    if name == 'divided_st':
        return [(t, 1, 1), (1, h, w)], [_LOCAL] * 2, [_NO_SHIFT] * 2
    swin = re.fullmatch(r'video_swin(?:_(\d+)x(\d+))?', name)
    if swin:
        p = min(int(swin.group(1) or 2), t)
        m = min(int(swin.group(2) or 4), h, w)
        return [(p, m, m)] * 2, [_LOCAL] * 2, [_NO_SHIFT, (p // 2, m // 2, m // 2)]
    local_global = re.fullmatch(r'spatial_lg_(v1|\d+)', name)
    if local_global:
        m = 4 if local_global.group(1) == 'v1' else int(local_global.group(1))
        if h <= m and w <= m:
            return [(t, 1, 1), (1, h, w)], [_LOCAL] * 2, [_NO_SHIFT] * 2
        return [(t, 1, 1), (1, m, m), (1, m, m)], [_LOCAL, _LOCAL, _DILATED], [_NO_SHIFT] * 3
    dilate = re.fullmatch(r'axial_space_dilate_(\d+)', name)
    if dilate:
        k = min(int(dilate.group(1)), h, w)
        cuboids = [(t, 1, 1), (1, h // k, 1), (1, h // k, 1), (1, 1, w // k), (1, 1, w // k)]
        return cuboids, [_LOCAL, _DILATED, _LOCAL, _DILATED, _LOCAL], [_NO_SHIFT] * 5
    raise UserValueError(f"unknown self-attention pattern {name!r}; known: 'full', 'axial', 'divided_st', 'video_swin', "
                         f"'video_swin_PxM', 'spatial_lg_v1', 'spatial_lg_M', 'axial_space_dilate_K'")


def cross_attention_pattern(name: str, shape: Sequence[int]) -> tuple[list, list, list, list]:
    """Earthformer's named cross-attention patterns ``cross_{K}x{K}``, ``…_lg``, ``…_heter`` for a memory
    of shape ``(T, H, W, C)``. Returns ``(cuboid_hws, shift_hws, strategies, n_temporals)``."""
    match = re.fullmatch(r'cross_(\d+)x(\d+)(_lg|_heter)?', name)
    if not match or match.group(1) != match.group(2):
        raise UserValueError(f"unknown cross-attention pattern {name!r}; known: 'cross_KxK', 'cross_KxK_lg', "
                             f"'cross_KxK_heter'")
    k = min(int(match.group(1)), shape[1], shape[2])
    if match.group(3) is None:
        return [(k, k)], [(0, 0)], [_LOCAL], [1]
    if match.group(3) == '_lg':
        return [(k, k)] * 2, [(0, 0)] * 2, [_LOCAL, _DILATED], [1, 1]
    return [(k, k)] * 3, [(0, 0), (0, 0), (k // 2, k // 2)], [_LOCAL, _DILATED, _LOCAL], [1, 1, 1]
