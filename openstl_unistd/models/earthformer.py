"""Earthformer (Gao et al., NeurIPS 2022): the cuboid-attention encoder–decoder with global vectors.

Our implementation of the middle of Earthformer's ``CuboidTransformerModel``, the part a multi-task
wrapper shares (:class:`EarthformerCore`): position embeddings, the hierarchical cuboid-attention
encoder, the decoder queries and the decoder, ``(B, T, H', W', D)`` → ``(B, T', H', W', D)`` for any
sizes up to the maxima it was built for. The per-frame stem (convolutions and patch merging) and the
head (upsampling, convolutions, output projection) are in ``modules/cuboid_layers.py``;
:class:`~openstl_unistd.models.multitask_earthformer.MultiTaskEarthformer` gives each task its own.

Stem, core and head with the core's maxima equal to one task's own sizes have exactly the parameters
of ``CuboidTransformerModel`` for the same arguments (the single-task model, in
tests/reference_models.py, is checked against Earthformer's code in tests/test_earthformer.py).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserValueError
from ..modules.cuboid_attention import (CuboidCrossAttentionBlock, CuboidSelfAttentionBlock, cross_attention_pattern,
                                        self_attention_pattern)
from ..modules.cuboid_layers import (CuboidPositionEmbedding, PatchMerging3D, SpatialUpsample, check_init_mode,
                                     init_linear)

Z_INIT_METHODS = ('zeros', 'nearest_interp', 'last', 'mean')


def _per_level(value, levels: int, argument: str, nested: bool = True) -> list:
    """One setting for every level: a per-attention list is shared, a list of ``levels`` such lists is per level."""
    value = list(value)
    shared = not isinstance(value[0][0] if nested else value[0], (list, tuple))
    if shared:
        return [value] * levels
    if len(value) != levels:
        raise UserValueError(f'{argument} must give one entry per level ({levels}), got {len(value)}: {value!r}')
    return value


def _patterns(names, levels: int, argument: str) -> list[str]:
    if isinstance(names, str):
        return [names] * levels
    names = list(names)
    if len(names) != levels:
        raise UserValueError(f'{argument} must give one pattern per level ({levels}), got {names!r}')
    return names


class CuboidEncoder(nn.Module):
    """``levels`` stacks of self-attention blocks with patch merging between them.

    ``forward(x, g)`` returns every level's output (the decoder's memories) and its global vectors.
    """

    def __init__(self, levels: Sequence[Sequence[CuboidSelfAttentionBlock]], merges: Sequence[PatchMerging3D],
                 global_merges: Optional[Sequence[nn.Linear]] = None) -> None:
        super().__init__()
        self.levels = nn.ModuleList([nn.ModuleList(blocks) for blocks in levels])
        self.merges = nn.ModuleList(merges)
        self.global_merges = nn.ModuleList(global_merges) if global_merges is not None else None

    def forward(self, x: torch.Tensor, global_vectors: Optional[torch.Tensor] = None
                ) -> tuple[list[torch.Tensor], list[Optional[torch.Tensor]]]:
        memories, memory_globals = [], []
        g = global_vectors
        for i, blocks in enumerate(self.levels):
            for block in blocks:
                x, g = block(x, g)
            memories.append(x)
            memory_globals.append(g)
            if i < len(self.merges):
                x = self.merges[i](x)
                if g is not None:
                    g = self.global_merges[i](g)
        return memories, memory_globals


class CuboidDecoder(nn.Module):
    """From the top level down: self-attention and cross-attention to that level's memory, then upsampling.

    On the top level (unless ``use_first_self_attn``) a cross-attention comes first and there is one
    self-attention block fewer, as in Earthformer. Cross-attention starts at level ``cross_start``.
    """

    def __init__(self, self_blocks: Sequence[Sequence[CuboidSelfAttentionBlock]],
                 cross_blocks: Sequence[Sequence[CuboidCrossAttentionBlock]], cross_start: int,
                 upsamplers: Sequence[SpatialUpsample], pos_embeds: Optional[Sequence[CuboidPositionEmbedding]] = None,
                 use_first_self_attn: bool = False, use_self_global: bool = False,
                 self_update_global: bool = True) -> None:
        super().__init__()
        self.self_blocks = nn.ModuleList([nn.ModuleList(blocks) for blocks in self_blocks])
        self.cross_blocks = nn.ModuleList([nn.ModuleList(blocks) for blocks in cross_blocks])
        self.upsamplers = nn.ModuleList(upsamplers)
        self.pos_embeds = nn.ModuleList(pos_embeds) if pos_embeds is not None else None
        self.cross_start = cross_start
        self.use_first_self_attn = use_first_self_attn
        self.use_self_global = use_self_global
        self.self_update_global = self_update_global

    def forward(self, x: torch.Tensor, memories: Sequence[torch.Tensor],
                memory_globals: Sequence[Optional[torch.Tensor]]) -> torch.Tensor:
        top = len(self.self_blocks) - 1
        for i in range(top, -1, -1):
            g = memory_globals[i]
            cross = self.cross_blocks[i - self.cross_start] if i >= self.cross_start else None
            offset = 1 if (i == top and not self.use_first_self_attn) else 0
            if offset and cross is not None:
                x = cross[0](x, memories[i], g)
            for j, block in enumerate(self.self_blocks[i]):
                if self.use_self_global:
                    x, g_new = block(x, g)
                    if self.self_update_global:
                        g = g_new
                else:
                    x, _ = block(x)
                if cross is not None:
                    x = cross[j + offset](x, memories[i], g)
            if i > 0:
                x = self.upsamplers[i - 1](x, tuple(memories[i - 1].shape[2:4]))
                if self.pos_embeds is not None:
                    x = self.pos_embeds[i - 1](x)
        return x


class EarthformerCore(nn.Module):
    """Earthformer between stem and head: ``(B, T, H', W', D)`` tokens → ``(B, T', H', W', D)`` decoder output.

    Built for at most ``max_in_frames`` input and ``max_out_frames`` output frames on token grids up to
    ``max_height × max_width`` (``D = base_units``); any smaller sizes work, so one core can serve
    several tasks. Cuboid patterns are derived from these maximal shapes and clipped to smaller inputs
    at run time; relative position tables and position embeddings are sized by the maxima. All other
    arguments are those of Earthformer's ``CuboidTransformerModel``, with its defaults (note that its
    default ``enc_depth`` and ``dec_depth`` differ in length and are therefore rejected, as there).
    """

    def __init__(
        self,
        max_in_frames: int,
        max_out_frames: int,
        max_height: int,
        max_width: int,
        base_units: int = 128,
        block_units: Optional[Sequence[int]] = None,
        scale_alpha: float = 1.0,
        num_heads: int = 4,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        ffn_drop: float = 0.0,
        downsample: Union[int, Sequence[int]] = 2,
        downsample_type: str = 'patch_merge',
        upsample_type: str = 'upsample',
        upsample_kernel_size: int = 3,
        enc_depth: Sequence[int] = (4, 4, 4),
        enc_attn_patterns: Union[str, Sequence[str], None] = None,
        enc_cuboid_size: Sequence = ((4, 4, 4), (4, 4, 4)),
        enc_cuboid_strategy: Sequence = (('l', 'l', 'l'), ('d', 'd', 'd')),
        enc_shift_size: Sequence = ((0, 0, 0), (0, 0, 0)),
        enc_use_inter_ffn: bool = True,
        dec_depth: Sequence[int] = (2, 2),
        dec_cross_start: int = 0,
        dec_self_attn_patterns: Union[str, Sequence[str], None] = None,
        dec_self_cuboid_size: Sequence = ((4, 4, 4), (4, 4, 4)),
        dec_self_cuboid_strategy: Sequence = (('l', 'l', 'l'), ('d', 'd', 'd')),
        dec_self_shift_size: Sequence = ((1, 1, 1), (0, 0, 0)),
        dec_cross_attn_patterns: Union[str, Sequence[str], None] = None,
        dec_cross_cuboid_hw: Sequence = ((4, 4), (4, 4)),
        dec_cross_cuboid_strategy: Sequence = (('l', 'l', 'l'), ('d', 'l', 'l')),
        dec_cross_shift_hw: Sequence = ((0, 0), (0, 0)),
        dec_cross_n_temporal: Sequence = (1, 2),
        dec_cross_last_n_frames: Optional[int] = None,
        dec_use_inter_ffn: bool = True,
        dec_hierarchical_pos_embed: bool = False,
        num_global_vectors: int = 4,
        use_dec_self_global: bool = True,
        dec_self_update_global: bool = True,
        use_dec_cross_global: bool = True,
        use_global_vector_ffn: bool = True,
        use_global_self_attn: bool = False,
        separate_global_qkv: bool = False,
        global_dim_ratio: int = 1,
        z_init_method: str = 'nearest_interp',
        ffn_activation: str = 'leaky',
        gated_ffn: bool = False,
        norm_layer: str = 'layer_norm',
        padding_type: str = 'ignore',
        pos_embed_type: str = 't+hw',
        checkpoint_level: Union[bool, int] = True,
        use_relative_pos: bool = True,
        self_attn_use_final_proj: bool = True,
        dec_use_first_self_attn: bool = False,
        attn_linear_init_mode: str = '0',
        ffn_linear_init_mode: str = '0',
        conv_init_mode: str = '0',
        down_up_linear_init_mode: str = '0',
        norm_init_mode: str = '0',
    ) -> None:
        super().__init__()
        if len(enc_depth) != len(dec_depth):
            raise UserValueError(f'enc_depth and dec_depth must have the same length, got {list(enc_depth)} and '
                                 f'{list(dec_depth)}')
        if global_dim_ratio != 1 and not separate_global_qkv:
            raise UserValueError(f'global_dim_ratio != 1 needs separate_global_qkv=True, got '
                                 f'global_dim_ratio={global_dim_ratio}')
        if z_init_method not in Z_INIT_METHODS:
            raise UserValueError(f'z_init_method must be one of {Z_INIT_METHODS}, got {z_init_method!r}')
        if downsample_type != 'patch_merge':
            raise UserValueError(f"downsample_type must be 'patch_merge', got {downsample_type!r}")
        if upsample_type != 'upsample':
            raise UserValueError(f"upsample_type must be 'upsample', got {upsample_type!r}")
        for argument, mode in (('attn_linear_init_mode', attn_linear_init_mode),
                               ('ffn_linear_init_mode', ffn_linear_init_mode),
                               ('down_up_linear_init_mode', down_up_linear_init_mode)):
            check_init_mode(argument, mode, ('0', '1'))
        check_init_mode('conv_init_mode', conv_init_mode)
        check_init_mode('norm_init_mode', norm_init_mode)
        levels = len(enc_depth)
        if not 0 <= dec_cross_start < levels:
            raise UserValueError(f'dec_cross_start must be in [0, {levels}), got {dec_cross_start}')
        self.max_shape = (max_in_frames, max_out_frames, max_height, max_width)
        self.base_units = base_units
        self.global_dim_ratio = global_dim_ratio
        self.z_init_method = z_init_method
        use_global = num_global_vectors > 0

        downsample = (1, downsample, downsample) if isinstance(downsample, int) else tuple(downsample)
        if block_units is None:
            block_units = [base_units * int((max(downsample) ** scale_alpha) ** i) for i in range(levels)]
        elif len(block_units) != levels or block_units[0] != base_units:
            raise UserValueError(f'block_units must have {levels} entries starting with base_units = {base_units}, '
                                 f'got {list(block_units)}')
        merges = [PatchMerging3D(block_units[i], block_units[i + 1], downsample, norm_layer, padding_type,
                                 down_up_linear_init_mode, norm_init_mode) for i in range(levels - 1)]
        mem_shapes = [(max_in_frames, max_height, max_width, base_units)]
        for i, merge in enumerate(merges):
            mem_shapes.append(merge.out_shape(*mem_shapes[-1][:3]) + (block_units[i + 1],))

        attention = dict(num_heads=num_heads, padding_type=padding_type, attn_drop=attn_drop, proj_drop=proj_drop,
                         ffn_drop=ffn_drop, activation=ffn_activation, gated_ffn=gated_ffn, norm=norm_layer,
                         separate_global_qkv=separate_global_qkv, global_dim_ratio=global_dim_ratio,
                         checkpoint_level=int(checkpoint_level), use_relative_pos=use_relative_pos,
                         attn_linear_init_mode=attn_linear_init_mode, ffn_linear_init_mode=ffn_linear_init_mode,
                         norm_init_mode=norm_init_mode)
        self_attention = dict(attention, use_global_vector_ffn=use_global_vector_ffn,
                              use_global_self_attn=use_global_self_attn, use_final_proj=self_attn_use_final_proj)

        enc_patterns = self._self_patterns(enc_attn_patterns, enc_cuboid_size, enc_cuboid_strategy, enc_shift_size,
                                           mem_shapes, 'enc')
        encoder_levels = [[CuboidSelfAttentionBlock(block_units[i], cuboid_sizes=enc_patterns[i][0],
                                                    strategies=enc_patterns[i][1], shift_sizes=enc_patterns[i][2],
                                                    use_inter_ffn=enc_use_inter_ffn, use_global_vector=use_global,
                                                    **self_attention)
                           for _ in range(enc_depth[i])] for i in range(levels)]
        global_merges = None
        if use_global:
            global_merges = [nn.Linear(global_dim_ratio * block_units[i], global_dim_ratio * block_units[i + 1])
                             for i in range(levels - 1)]
        self.encoder = CuboidEncoder(encoder_levels, merges, global_merges)
        self.enc_pos_embed = CuboidPositionEmbedding(base_units, max_in_frames, max_height, max_width, pos_embed_type)
        if use_global:
            self.init_global_vectors = nn.Parameter(torch.zeros(num_global_vectors, global_dim_ratio * base_units))
            nn.init.trunc_normal_(self.init_global_vectors, std=0.02)
        else:
            self.init_global_vectors = None

        top = mem_shapes[-1]
        self.z_proj = nn.Linear(top[-1], top[-1])
        init_linear(self.z_proj, '0')
        self.dec_pos_embed = CuboidPositionEmbedding(top[-1], max_out_frames, top[1], top[2], pos_embed_type)

        use_self_global = use_global and use_dec_self_global
        dec_patterns = self._self_patterns(dec_self_attn_patterns, dec_self_cuboid_size, dec_self_cuboid_strategy,
                                           dec_self_shift_size, mem_shapes, 'dec_self')
        self_blocks = []
        for i in range(levels):
            depth = dec_depth[i] - (1 if i == levels - 1 and not dec_use_first_self_attn else 0)
            self_blocks.append([CuboidSelfAttentionBlock(mem_shapes[i][-1], cuboid_sizes=dec_patterns[i][0],
                                                         strategies=dec_patterns[i][1], shift_sizes=dec_patterns[i][2],
                                                         use_inter_ffn=dec_use_inter_ffn,
                                                         use_global_vector=use_self_global, **self_attention)
                                for _ in range(depth)])
        cross = self._cross_patterns(dec_cross_attn_patterns, dec_cross_cuboid_hw, dec_cross_cuboid_strategy,
                                     dec_cross_shift_hw, dec_cross_n_temporal, mem_shapes)
        cross_blocks = [[CuboidCrossAttentionBlock(mem_shapes[i][-1], cuboid_hws=cross[i][0], shift_hws=cross[i][1],
                                                   strategies=cross[i][2], n_temporals=cross[i][3],
                                                   cross_last_n_frames=dec_cross_last_n_frames,
                                                   use_inter_ffn=dec_use_inter_ffn,
                                                   max_temporal_relative=max_in_frames + max_out_frames,
                                                   use_global_vector=use_global and use_dec_cross_global, **attention)
                         for _ in range(dec_depth[i])] for i in range(dec_cross_start, levels)]
        upsamplers = [SpatialUpsample(mem_shapes[i + 1][-1], mem_shapes[i][-1], upsample_kernel_size)
                      for i in range(levels - 1)]
        pos_embeds = None
        if dec_hierarchical_pos_embed and levels > 1:
            pos_embeds = [CuboidPositionEmbedding(mem_shapes[i][-1], max_out_frames, mem_shapes[i][1], mem_shapes[i][2],
                                                  pos_embed_type) for i in range(levels - 1)]
        self.decoder = CuboidDecoder(self_blocks, cross_blocks, dec_cross_start, upsamplers, pos_embeds,
                                     dec_use_first_self_attn, use_self_global, dec_self_update_global)

    @staticmethod
    def _self_patterns(patterns, cuboid_size, strategy, shift_size, mem_shapes, prefix: str) -> list[tuple]:
        """Per level ``(cuboid_sizes, strategies, shift_sizes)`` from named patterns or explicit lists."""
        levels = len(mem_shapes)
        if patterns is not None:
            names = _patterns(patterns, levels, f'{prefix}_attn_patterns')
            return [self_attention_pattern(name, shape) for name, shape in zip(names, mem_shapes)]
        sizes = _per_level(cuboid_size, levels, f'{prefix}_cuboid_size')
        strategies = _per_level(strategy, levels, f'{prefix}_cuboid_strategy')
        shifts = _per_level(shift_size, levels, f'{prefix}_shift_size')
        return list(zip(sizes, strategies, shifts))

    @staticmethod
    def _cross_patterns(patterns, cuboid_hw, strategy, shift_hw, n_temporal, mem_shapes) -> list[tuple]:
        """Per level ``(cuboid_hws, shift_hws, strategies, n_temporals)``."""
        levels = len(mem_shapes)
        if patterns is not None:
            names = _patterns(patterns, levels, 'dec_cross_attn_patterns')
            return [cross_attention_pattern(name, shape) for name, shape in zip(names, mem_shapes)]
        return list(zip(_per_level(cuboid_hw, levels, 'dec_cross_cuboid_hw'),
                        _per_level(shift_hw, levels, 'dec_cross_shift_hw'),
                        _per_level(strategy, levels, 'dec_cross_cuboid_strategy'),
                        _per_level(n_temporal, levels, 'dec_cross_n_temporal', nested=False)))

    def initial_queries(self, memory: torch.Tensor, out_frames: int) -> torch.Tensor:
        """Decoder input ``(B, T', h, w, C)`` from the top memory ``(B, T, h, w, C)`` (``z_init_method``)."""
        b, t, h, w, c = memory.shape
        if self.z_init_method == 'zeros':
            z = memory.new_zeros((1, out_frames, h, w, c))
            return self.z_proj(self.dec_pos_embed(z)).expand(b, -1, -1, -1, -1)
        if self.z_init_method == 'nearest_interp':
            z = F.interpolate(memory.permute(0, 4, 1, 2, 3), size=(out_frames, h, w)).permute(0, 2, 3, 4, 1)
        elif self.z_init_method == 'last':
            z = memory[:, -1:].expand(b, out_frames, h, w, c)
        else:
            z = memory.mean(dim=1, keepdim=True).expand(b, out_frames, h, w, c)
        return self.z_proj(z)

    def forward(self, x: torch.Tensor, out_frames: int) -> torch.Tensor:
        """``(B, T, H', W', D)`` stem output → ``(B, out_frames, H', W', D)`` decoder output."""
        max_in, max_out, max_h, max_w = self.max_shape
        if x.dim() != 5 or x.shape[4] != self.base_units or x.shape[1] > max_in or x.shape[2] > max_h \
                or x.shape[3] > max_w or not 1 <= out_frames <= max_out:
            raise ValueError(f'core built for (B, T ≤ {max_in}, H ≤ {max_h}, W ≤ {max_w}, {self.base_units}) '
                             f'inputs and T\' ≤ {max_out}, got input {tuple(x.shape)} and out_frames={out_frames}')
        x = self.enc_pos_embed(x)
        g = None
        if self.init_global_vectors is not None:
            g = self.init_global_vectors.expand(x.shape[0], -1, -1)
        memories, memory_globals = self.encoder(x, g)
        z = self.initial_queries(memories[-1], out_frames)
        return self.decoder(z, memories, memory_globals)
