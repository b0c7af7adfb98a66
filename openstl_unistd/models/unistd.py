"""UniSTD: one pretrained Transformer shared by many spatiotemporal tasks (docs/method.md#data-flow)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import UserValueError, check_known_keys
from ..modules.adapter import adapter_part, adapters, set_backbone_trainable
from ..modules.backbone import RANDOM_BACKBONE_SEED, build_backbone
from ..modules.lora_injection import inject_ra_moe
from ..modules.position_encoding import SinCos2DPositionEncoding
from ..modules.pretrained import PathLike
from ..modules.ra_moe import RAMoELoRA
from ..modules.spatiotemporal_block import SpatioTemporalBlock
from ..modules.task_decoder import TaskDecoder
from ..modules.task_encoder import TaskEncoder
from ..modules.temporal import TemporalModule
from ..tasks import KNOWN_TASKS, TaskLike
from .parameters import ParameterCount
from .base import MultiTaskModel
from .registry import register_model

PAPER_LORA = dict(qkv_experts=6, proj_experts=2, max_rank=32, init_rank=4.5, alpha=1.0, gamma=1.0,
                  top_k=None, learn_rank=True)
"""RA-MoE settings of the paper: 6 experts on each of Q, K, V, 2 on Proj, ranks in [1, 32] from 4.5 (R = 32 is
what paper Tables 7 and 9 point to: docs/method.md#max-rank-of-the-paper-configs)."""

PAPER_TEMPORAL = dict(hidden_ratio=6, experts=2)
"""Temporal module of the paper: FFN with ratio 6 and a 2-expert RA-MoE1D."""

PARTS = ('task encoders', 'task decoders', 'backbone (pretrained)',
         *dict.fromkeys([*RAMoELoRA.PARTS.values(), *TemporalModule.PARTS.values()]))


def _options(kind: str, value: Union[bool, Mapping, None], defaults: dict) -> Optional[dict]:
    """``True`` → the paper's settings, ``False``/``None`` → disabled, a mapping → overrides."""
    if value is True:
        return dict(defaults)
    if value is False or value is None:
        return None
    check_known_keys(value, defaults, f'model.{kind}')
    return {**defaults, **value}


CHECKPOINTING_PARTS = ('task_ends', 'blocks')
"""What ``UniSTD(checkpointing=dict(...))`` can recompute in backward."""


def _checkpointing_parts(value, served: Sequence[str]) -> tuple[frozenset[str], bool]:
    """``(tasks whose full-resolution task-end stages are checkpointed, whether the ViT blocks are)`` of a
    ``checkpointing`` value; ``ValueError`` with the expected and the actual value otherwise."""
    expected = ("False, True (every task's full-resolution task ends), a list of task names, or a dict with "
                f"{' and/or '.join(repr(p) for p in CHECKPOINTING_PARTS)} (task_ends: a bool or a list of task "
                "names; blocks: a bool)")
    wrong = UserValueError(f'checkpointing: expected {expected}; got {value!r} ({type(value).__name__})')
    parts = dict(value) if isinstance(value, Mapping) else {'task_ends': value}
    if set(parts) - set(CHECKPOINTING_PARTS) or not isinstance(parts.get('blocks', False), bool):
        raise wrong
    ends = parts.get('task_ends', False)
    if ends is None or isinstance(ends, bool):
        names = set(served) if ends else set()
    elif isinstance(ends, (list, tuple)) and all(isinstance(name, str) for name in ends):
        unknown = sorted(set(ends) - set(served) - set(KNOWN_TASKS))
        if unknown:
            raise UserValueError(f'checkpointing: unknown task(s) {unknown}; this model serves {sorted(served)}')
        names = set(ends) & set(served)
    else:
        raise wrong
    return frozenset(names), parts.get('blocks', False)


@register_model('UniSTD')
class UniSTD(MultiTaskModel):
    """``forward(x, task)``: past frames ``(B, T, C, H, W)`` → future frames ``(B, T', C, H, W)``.

    Per task: an encoder to tokens ``(B, H'·W', L)`` and a decoder back to frames. Shared: a
    frozen pretrained ViT whose attention Q/K/V/Proj carry RA-MoE LoRA adapters and whose blocks
    carry a temporal module; tokens get a fixed 2-D sin-cos position encoding.

    Args:
        tasks: the tasks served (names of known tasks, ``TaskSpec`` or dicts; see ``tasks.py``).
        backbone: ``clip`` | ``laion`` | ``imagenet`` | ``random`` or a timm ViT name.
        pretrained: ``False``, ``True`` (Hugging Face cache) or a weights file path.
        backbone_kwargs: timm architecture overrides (e.g. ``dict(depth=2)`` for tests).
        backbone_seed: seed of a random backbone's weights (``pretrained=False``), whatever the global
            random state (:data:`~..modules.backbone.RANDOM_BACKBONE_SEED`); a pretrained one ignores it.
        hidden_channels: C', channels of the task encoders and decoders between blocks.
        inner_channels: width of each encoder block's stride-1 convolution (and of its mirror in the
            decoder): ``'frames'`` for paper Table 8's literal "channels=T'" (the frames of one decoded
            pass, :meth:`pass_frames`), or a number (``hidden_channels`` gives the ``C'`` reading).
        skip: add the first encoder layer's full-resolution output back before the decoder's last
            layer (SimVP/TAU's skip path; the last input frame's for every output frame when ``F ≠ T``).
            ``False`` removes that addition and nothing else (an ablation).
        decode: ``'rollout'`` (a ``T → T`` model rolled out or truncated to ``T'`` like OpenSTL's SimVP
            method: paper Table 9) or ``'direct'`` (one pass to ``T'`` frames).
        lora: ``True`` for :data:`PAPER_LORA`, ``False`` for none, or a dict of overrides.
        temporal: ``True`` for :data:`PAPER_TEMPORAL`, ``False`` for none, or a dict of overrides.
        train_backbone: train the ViT's own weights too (next to the adapters). ``False`` (the paper's
            frozen backbone) by default; for a random backbone (the demo, paper Table 5's "Random" row,
            which does not say) a frozen one is a fixed random feature map, docs/method.md measures both.
        checkpointing: activation checkpointing, for memory (docs/training.md): ``False`` (none),
            ``True`` (every task's full-resolution task-end stages: the encoder's first block, the
            decoder's last block and readout, recomputed in backward one sample at a time), a list of
            task names (those tasks' stages; names of known tasks this model does not serve are
            ignored, so a base config can name them), or ``dict(task_ends=<bool or names>,
            blocks=<bool>)`` (``blocks``: every ViT block recomputed too). Outputs and gradients are
            unchanged; the cost is a second forward of what is checkpointed.
    """

    def __init__(
        self,
        tasks: Sequence[TaskLike],
        backbone: str = 'clip',
        pretrained: Union[bool, PathLike] = False,
        backbone_kwargs: Optional[Mapping] = None,
        backbone_seed: int = RANDOM_BACKBONE_SEED,
        hidden_channels: int = 64,
        lora: Union[bool, Mapping] = True,
        temporal: Union[bool, Mapping] = True,
        inner_channels: Union[int, str] = 'frames',
        skip: bool = True,
        decode: str = 'rollout',
        train_backbone: bool = False,
        checkpointing: Union[bool, Sequence[str], Mapping] = False,
    ) -> None:
        super().__init__(tasks, decode)
        if inner_channels != 'frames' and (not isinstance(inner_channels, int) or inner_channels < 1):
            raise UserValueError(f"inner_channels must be 'frames' or a positive integer, got {inner_channels!r}")
        self.skip = bool(skip)
        checkpointed, checkpoint_blocks = _checkpointing_parts(checkpointing, list(self.tasks))
        lora_options = _options('lora', lora, PAPER_LORA)
        temporal_options = _options('temporal', temporal, PAPER_TEMPORAL)

        vit = build_backbone(backbone, pretrained, backbone_seed, **dict(backbone_kwargs or {}))
        self.train_backbone = bool(train_backbone)
        dim = vit.embed_dim
        adapter_options = None
        if lora_options is not None:
            adapter_options = {k: v for k, v in lora_options.items() if k not in ('qkv_experts', 'proj_experts')}
            inject_ra_moe(vit.blocks, lora_options['qkv_experts'], lora_options['proj_experts'], **adapter_options)
        vit.blocks = nn.ModuleList([
            SpatioTemporalBlock(block, self._temporal_module(dim, temporal_options, adapter_options))
            for block in vit.blocks
        ])
        set_backbone_trainable(vit, self.train_backbone)
        self.backbone = vit
        self.embed_dim = dim
        self.position_encoding = SinCos2DPositionEncoding(dim)
        inner = {name: self.pass_frames(name) if inner_channels == 'frames' else inner_channels for name in self.tasks}
        self.encoders = nn.ModuleDict({
            t.name: TaskEncoder(t.input_frames, t.channels, t.height, t.width, t.encoder_depth, dim, hidden_channels,
                                inner[t.name])
            for t in self.tasks.values()
        })
        self.decoders = nn.ModuleDict({
            t.name: TaskDecoder(self.pass_frames(t.name), t.channels, t.height, t.width, t.encoder_depth, dim,
                                hidden_channels, inner[t.name])
            for t in self.tasks.values()
        })
        self.backbone.checkpoint = checkpoint_blocks
        for name in checkpointed:
            self.encoders[name].checkpoint = self.decoders[name].checkpoint = True

    @staticmethod
    def _temporal_module(dim: int, options: Optional[dict], adapter_options: Optional[dict]) -> Optional[TemporalModule]:
        if options is None:
            return None
        adapter = RAMoELoRA(dim, dim, options['experts'], **adapter_options) if adapter_options is not None else None
        return TemporalModule(dim, options['hidden_ratio'], adapter)

    def repeated_regions(self) -> list[tuple[str, nn.Module]]:
        """The ViT blocks (with their adapters and temporal modules)."""
        return [(f'backbone.blocks.{i}', block) for i, block in enumerate(self.backbone.blocks)]

    def latent_grid(self, task: str) -> tuple[int, int]:
        """The token grid ``(H', W')`` of ``task`` (paper Table 8)."""
        return self.encoders[task].grid

    def step(self, x: torch.Tensor, task: str) -> torch.Tensor:
        """One pass ``(B, T, C, H, W)`` → ``(B, F, C, H, W)``: encoder, shared Transformer, decoder."""
        encoder = self.encoders[task]
        tokens, skip = encoder(x)
        tokens = self.backbone(self.position_encoding(tokens, encoder.grid))
        return self.decoders[task](tokens, self._align_skip(skip, x.shape[:2], self.pass_frames(task)))

    def _align_skip(self, skip: torch.Tensor, batch_frames: torch.Size, frames_out: int) -> Optional[torch.Tensor]:
        """The encoder's ``(B·T, inner, H, W)`` skip for ``F`` output frames: frame ``t`` for output ``t``
        when ``F = T``, else the last input frame's for every output frame (as the SimVP baseline)."""
        if not self.skip:
            return None
        b, t = batch_frames
        if frames_out == t:
            return skip
        last = skip.reshape(b, t, *skip.shape[1:])[:, -1:]
        return last.expand(b, frames_out, *skip.shape[1:]).reshape(b * frames_out, *skip.shape[1:])

    RANK_COLUMNS = ('Q', 'K', 'V', 'Proj', 'Temporal')

    def rank_table(self) -> torch.Tensor:
        """``(blocks, 5)`` mean expert rank of Q, K, V, Proj and the temporal RA-MoE per block (NaN if absent)."""
        rows, device = [], next(self.parameters()).device
        for block in self.backbone.blocks:
            attn = block.attn
            qkv, proj = getattr(attn.qkv, 'adapter', None), getattr(attn.proj, 'adapter', None)
            temporal = block.temporal.adapter if block.temporal is not None else None
            nan = torch.full((1,), float('nan'), device=device)
            row = [qkv.rank.detach().float().mean(dim=1) if qkv is not None else nan.expand(3),
                   proj.rank.detach().float().mean().view(1) if proj is not None else nan,
                   temporal.rank.detach().float().mean().view(1) if temporal is not None else nan]
            rows.append(torch.cat(row))
        return torch.stack(rows).cpu()  # one transfer: the table is logged every step of the search

    def parameter_breakdown(self) -> dict[str, ParameterCount]:
        """Trainable/frozen element counts per part: :data:`PARTS`, then any other part an adapter
        declares (:class:`~..modules.adapter.Adapter`)."""
        counts = {part: ParameterCount() for part in PARTS}
        found = adapters(self)
        for name, parameter in self.named_parameters():
            if name.startswith(('encoders.', 'decoders.')):
                part = 'task encoders' if name.startswith('encoders.') else 'task decoders'
            else:
                part = adapter_part(name, found) or 'backbone (pretrained)'
            counts.setdefault(part, ParameterCount()).add(parameter)
        return counts
