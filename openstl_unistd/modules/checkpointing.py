"""Activation checkpointing in chunks of the batch: less memory for a second forward in backward."""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch.utils.checkpoint import checkpoint

Outputs = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def checkpoint_in_chunks(function: Callable[..., Outputs], chunks: int, *inputs: Optional[torch.Tensor]) -> Outputs:
    """``function(*inputs)`` computed on ``chunks`` slices of the batch (dim 0), each slice under
    ``torch.utils.checkpoint`` (non-reentrant), the outputs concatenated back along dim 0.

    Only the inputs are kept for backward; there each slice is recomputed and differentiated on its
    own, so the activations of one slice exist at a time. ``function`` must treat the samples of
    dim 0 independently (convolutions, per-sample GroupNorm): then the result equals
    ``function(*inputs)``. ``None`` inputs are passed through to every slice.
    """
    pieces = [torch.tensor_split(x, chunks) if x is not None else [None] * chunks for x in inputs]
    outputs = [checkpoint(function, *piece, use_reentrant=False) for piece in zip(*pieces)]
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)
