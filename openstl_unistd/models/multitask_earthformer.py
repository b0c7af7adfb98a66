"""Earthformer trained jointly on many tasks: one shared cuboid-attention core, per-task stem and head.

Earthformer's core (position embeddings, encoder, decoder queries, decoder) works on token grids
``(T, H', W', D)`` of any size up to the maxima it is built for, and produces any ``T'`` up to its
maximum. Each task gets its own stem (its ``C``; its frames downsampled to its grid) and head (back
to its ``C, H, W``); the core is built for the largest grid and horizon among the tasks.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..errors import UserValueError
from ..modules.cuboid_layers import build_stem_and_head
from ..tasks import TaskLike
from .base import MultiTaskModel
from .registry import register_model
from .earthformer import EarthformerCore


def _stack_conv_stages(halvings: int, base_units: int) -> dict:
    """``stack_conv`` stem options: one ×2 stage per halving, widths doubling up to ``base_units`` (≥ 16)."""
    stages = max(1, halvings)
    dims = [max(16, base_units // 2 ** (stages - 1 - i)) for i in range(stages)]
    dims[-1] = base_units
    return dict(initial_downsample_stack_conv_num_layers=stages, initial_downsample_stack_conv_dim_list=dims,
                initial_downsample_stack_conv_downscale_list=[2 if halvings else 1] * stages,
                initial_downsample_stack_conv_num_conv_list=[2] * stages)


@register_model('Earthformer')
class MultiTaskEarthformer(MultiTaskModel):
    """``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)`` with a shared Earthformer core.

    Args:
        tasks: the tasks served.
        base_units: D, channels of the tokens (and of the stems' output).
        halvings: per task, how many times its stem halves H and W; default ``n``, the task's encoder
            depth, so each task's token grid is UniSTD's.
        initial_downsample_type: ``'stack_conv'`` (default): one stage of two 3×3 convolutions and a
            ×2 patch merging per halving, widths doubling up to ``base_units`` (Earthformer's SEVIR
            stem is of this kind); ``'conv'``: convolutions at full resolution, then one merging by
            ``2 ** halvings`` (Earthformer's ENSO stem; costly on large frames).
        initial_downsample_activation, initial_downsample_conv_layers, final_upsample_conv_layers,
        padding_type: Earthformer's stem/head arguments, shared by all tasks.
        **core_options: the other ``CuboidTransformerModel`` arguments (see
            :class:`~openstl_unistd.models.earthformer.EarthformerCore`).
    """

    def __init__(self, tasks: Sequence[TaskLike], base_units: int = 128, halvings: Optional[Mapping[str, int]] = None,
                 initial_downsample_type: str = 'stack_conv', initial_downsample_activation: str = 'leaky',
                 initial_downsample_conv_layers: int = 2, final_upsample_conv_layers: int = 2,
                 padding_type: str = 'ignore', **core_options) -> None:
        super().__init__(tasks)
        depth = {name: spec.encoder_depth for name, spec in self.tasks.items()}
        unknown = sorted(set(halvings or {}) - set(self.tasks))
        if unknown:
            raise UserValueError(f'halvings given for task(s) {unknown} this model does not serve')
        depth.update(halvings or {})
        self.stems, self.heads, grids = nn.ModuleDict(), nn.ModuleDict(), {}
        for name, spec in self.tasks.items():
            self.stems[name], self.heads[name], grids[name] = build_stem_and_head(
                (spec.input_frames, spec.height, spec.width, spec.channels),
                (spec.output_frames, spec.height, spec.width, spec.channels), base_units,
                initial_downsample_type=initial_downsample_type,
                initial_downsample_activation=initial_downsample_activation,
                initial_downsample_scale=2 ** depth[name], initial_downsample_conv_layers=initial_downsample_conv_layers,
                final_upsample_conv_layers=final_upsample_conv_layers, padding_type=padding_type,
                **_stack_conv_stages(depth[name], base_units))
        self.token_grids = grids
        self.core = EarthformerCore(
            max(g[0] for g in grids.values()), max(spec.output_frames for spec in self.tasks.values()),
            max(g[1] for g in grids.values()), max(g[2] for g in grids.values()),
            base_units=base_units, padding_type=padding_type, **core_options)

    def repeated_regions(self) -> list[tuple[str, nn.Module]]:
        """The shared cuboid-attention core."""
        return [('core', self.core)]

    def latent_grid(self, task: str) -> tuple[int, int]:
        """``(H', W')`` of the core's cuboid grid for ``task``."""
        return tuple(self.token_grids[task][1:3])

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        spec = self.check_input(x, task)
        tokens = self.stems[task](x.permute(0, 1, 3, 4, 2))
        y = self.heads[task](self.core(tokens, spec.output_frames))
        return y.permute(0, 1, 4, 2, 3)
