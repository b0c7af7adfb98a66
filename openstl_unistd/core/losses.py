"""Training losses beyond the per-pixel ones."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def differential_divergence(pred: torch.Tensor, target: torch.Tensor, tau: float = 0.1,
                            eps: float = 1e-12) -> torch.Tensor:
    """TAU's differential divergence regularization (Tan et al., CVPR 2023), as OpenSTL computes it.

    The frame differences ``Δ_t = x_{t+1} − x_t`` of prediction and target are flattened over
    ``(C, H, W)`` and turned into distributions ``p_t = softmax(Δ̂_t / τ)`` and
    ``q_t = softmax(Δ_t / τ)``; the loss is the mean over ``b``, ``t`` and the ``C·H·W`` positions
    ``i`` of ``p_{t,i} · log(p_{t,i} / (q_{t,i} + ε) + ε)``, a KL divergence ``KL(p ‖ q)`` divided by
    ``C·H·W``. It penalizes predictions whose frame-to-frame changes are distributed unlike the
    target's, which plain MSE does not see. As in OpenSTL, sequences of ``T ≤ 2`` frames give 0.

    Args:
        pred, target: ``(B, T, C, H, W)``.
        tau: softmax temperature.
        eps: keeps the division and the logarithm finite.

    Returns:
        A scalar tensor.
    """
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(f'pred and target must both be (B, T, C, H, W), got {tuple(pred.shape)} '
                         f'and {tuple(target.shape)}')
    B, T = pred.shape[:2]
    if T <= 2:
        return pred.new_zeros(())
    p = F.softmax(torch.diff(pred, dim=1).reshape(B, T - 1, -1) / tau, dim=-1)
    q = F.softmax(torch.diff(target, dim=1).reshape(B, T - 1, -1) / tau, dim=-1)
    return (p * torch.log(p / (q + eps) + eps)).mean()
