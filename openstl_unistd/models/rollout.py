"""Longer forecasts from a fixed-length model: predictions fed back as inputs (OpenSTL's rollout)."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import UserValueError

DECODE_MODES = ('direct', 'rollout')
"""How a model reaches a task's ``T'`` frames: ``'direct'`` decodes all ``T'`` in one pass; ``'rollout'``
is a ``T → T`` model rolled out ``⌈T'/T⌉`` times (truncated when ``T' < T``), as OpenSTL's SimVP method."""


def check_decode(decode: str) -> str:
    if decode not in DECODE_MODES:
        raise UserValueError(f'decode must be one of {DECODE_MODES}, got {decode!r}')
    return decode


def passes_needed(frames: int, frames_per_pass: int) -> int:
    """Calls of a model giving ``frames_per_pass`` frames needed for ``frames`` frames."""
    return -(-frames // frames_per_pass)


def roll_out(step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, frames: int) -> torch.Tensor:
    """``frames`` future frames ``(B, frames, C, H, W)`` from past frames ``x (B, T, C, H, W)``.

    ``step`` maps ``T`` past frames to the next ``F`` frames. It is called ``⌈frames / F⌉`` times,
    each time on the last ``T`` frames of the inputs followed by what it has predicted so far; the
    last call is truncated. For ``F = T`` this is exactly OpenSTL's SimVP method (``cur_seq =
    model(cur_seq)`` ``frames // T`` times, then once more keeping ``frames % T``); gradients flow
    through every pass.
    """
    window = x.shape[1]
    history = x
    outputs = []
    produced = 0
    while produced < frames:
        y = step(history[:, -window:])
        outputs.append(y)
        produced += y.shape[1]
        if produced < frames:
            history = torch.cat([history[:, -window:], y], dim=1)
    return torch.cat(outputs, dim=1)[:, :frames] if len(outputs) > 1 else outputs[0][:, :frames]
