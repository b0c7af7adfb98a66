"""Fixed 2-D sine-cosine position encoding for any token grid (docs/method.md#position-encoding)."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserValueError


def sincos_2d_position_encoding(
    height: int,
    width: int,
    dim: int,
    temperature: float = 10000.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Encoding of every cell of a ``height × width`` grid, row-major, shape ``(H·W, dim)``.

    The first half of the channels encodes the row, the second half the column; each half is
    ``[sin(p·ω_0..ω_{k-1}), cos(p·ω_0..ω_{k-1})]`` with ``k = dim / 4`` and
    ``ω_i = temperature^(-i / k)``.
    """
    if dim % 4 != 0:
        raise UserValueError(f'2-D sin-cos position encoding needs dim divisible by 4, got {dim}')
    quarter = dim // 4
    omega = temperature ** (-torch.arange(quarter, device=device, dtype=torch.float64) / quarter)
    rows = torch.arange(height, device=device, dtype=torch.float64)
    cols = torch.arange(width, device=device, dtype=torch.float64)
    row_angles = rows[:, None] * omega[None, :]
    col_angles = cols[:, None] * omega[None, :]
    row_code = torch.cat([row_angles.sin(), row_angles.cos()], dim=1)
    col_code = torch.cat([col_angles.sin(), col_angles.cos()], dim=1)
    grid = torch.cat([
        row_code[:, None, :].expand(height, width, 2 * quarter),
        col_code[None, :, :].expand(height, width, 2 * quarter),
    ], dim=2)
    return grid.reshape(height * width, dim).to(dtype)


class SinCos2DPositionEncoding(nn.Module):
    """Adds the fixed encoding of a ``(H', W')`` grid to tokens ``(B, H'·W', dim)``.

    Encodings are cached per grid size, device and dtype: each task has its own grid.
    """

    def __init__(self, dim: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if dim % 4 != 0:
            raise UserValueError(f'2-D sin-cos position encoding needs dim divisible by 4, got {dim}')
        self.dim = dim
        self.temperature = temperature
        self._cache: dict[tuple, torch.Tensor] = {}

    def encoding(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (height, width, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = sincos_2d_position_encoding(
                height, width, self.dim, self.temperature, device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        height, width = grid
        if tokens.shape[1:] != (height * width, self.dim):
            raise ValueError(
                f'tokens of shape {tuple(tokens.shape)} do not match grid {grid} with dim {self.dim}: '
                f'expected (B, {height * width}, {self.dim})')
        return tokens + self.encoding(height, width, tokens.device, tokens.dtype)

    def extra_repr(self) -> str:
        return f'dim={self.dim}, temperature={self.temperature}'
