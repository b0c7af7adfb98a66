"""A frozen pretrained ViT block with UniSTD's temporal module inside it."""
from __future__ import annotations

import re
from typing import Mapping, Optional, TypeVar

import torch
from torch import nn

from ..errors import UserTypeError
from .temporal import TemporalModule

BLOCK_PARTS = ('norm1', 'attn', 'ls1', 'drop_path1', 'norm2', 'mlp', 'ls2', 'drop_path2')
"""The children of timm's ViT ``Block``, in its order: adopted as they are, so that parameter names read as
timm's (``backbone.blocks.0.attn.qkv...``) with ``temporal`` beside them."""

LEGACY_BLOCK_KEY = re.compile(r'((?:^|\.)backbone\.blocks\.\d+\.)block\.')
"""Tensor names of models saved before the blocks' parts were adopted: ``backbone.blocks.N.block.<part>``."""

Value = TypeVar('Value')


class SpatioTemporalBlock(nn.Module):
    """timm ViT ``Block`` with the temporal module between self-attention and the MLP.

    ``x ← x + attn(norm1(x)); x ← temporal(x); x ← x + mlp(norm2(x))`` (layer scale and drop path as
    the block has them). Without a temporal module this is the block's own forward. The block's parts
    become this module's children (:data:`BLOCK_PARTS`), not a wrapped ``block``, so ``train_only`` and
    state-dict names are timm's.
    """

    def __init__(self, block: nn.Module, temporal: Optional[TemporalModule] = None) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        children = tuple(name for name, _ in block.named_children())
        if type(block).forward is not Block.forward or children != BLOCK_PARTS:
            raise UserTypeError(f'{type(block).__name__} is not a timm ViT Block (children {list(BLOCK_PARTS)} and '
                                f'its forward), got children {list(children)}: use a timm VisionTransformer backbone')
        for name in BLOCK_PARTS:
            setattr(self, name, getattr(block, name))
        self.temporal = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, L)`` → ``(B, N, L)``."""
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        if self.temporal is not None:
            x = self.temporal(x)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def renamed_legacy_keys(state: Mapping[str, Value]) -> dict[str, Value]:
    """``state`` with the names of models saved before the blocks' parts were adopted
    (``backbone.blocks.N.block.attn…`` → ``backbone.blocks.N.attn…``, also under a ``model.`` prefix); other
    names unchanged."""
    return {LEGACY_BLOCK_KEY.sub(r'\1', key, count=1): value for key, value in state.items()}


def legacy_key(name: str) -> str:
    """The name tensor ``name`` had before the blocks' parts were adopted (the inverse of
    :func:`renamed_legacy_keys` for a block's parts; other names unchanged)."""
    match = re.match(r'((?:.*\.)?backbone\.blocks\.\d+\.)([^.]+)', name)
    if match is None or match.group(2) not in BLOCK_PARTS:
        return name
    return f'{match.group(1)}block.{name[len(match.group(1)):]}'
