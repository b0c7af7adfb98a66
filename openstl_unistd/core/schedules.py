"""Learning-rate schedules, as functions of the optimizer step (not of Lightning's global_step)."""
from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float, warmup_lr: float,
                  min_lr: float) -> float:
    """Learning rate at ``step``: linear from ``warmup_lr`` to ``base_lr`` over ``warmup_steps``, then a
    half cosine from ``base_lr`` down to ``min_lr`` at ``total_steps`` (constant after it)."""
    if step < warmup_steps:
        return warmup_lr + (base_lr - warmup_lr) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
