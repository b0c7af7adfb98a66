import math

import pytest
import torch

from openstl_unistd.modules.position_encoding import SinCos2DPositionEncoding, sincos_2d_position_encoding


def test_rows_use_the_first_half_and_columns_the_second():
    h, w, dim = 3, 5, 16
    pe = sincos_2d_position_encoding(h, w, dim, dtype=torch.float64).view(h, w, dim)
    quarter = dim // 4
    omega = 10000 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    for r in range(h):
        for c in range(w):
            expected = torch.cat([torch.sin(r * omega), torch.cos(r * omega), torch.sin(c * omega), torch.cos(c * omega)])
            torch.testing.assert_close(pe[r, c], expected, rtol=0, atol=1e-12)
    assert pe[0, 0, :quarter].abs().max() == 0 and pe[0, 0, quarter:2 * quarter].eq(1).all()
    assert math.isclose(float(pe[2, 4, 2 * quarter]), math.sin(4.0), abs_tol=1e-12)


def test_every_cell_of_a_non_square_grid_gets_a_distinct_code():
    pe = sincos_2d_position_encoding(12, 24, 768)
    assert pe.shape == (288, 768)
    assert torch.cdist(pe, pe).add(torch.eye(288) * 1e3).min() > 1e-3


def test_module_adds_the_encoding_and_checks_the_grid():
    module = SinCos2DPositionEncoding(8)
    tokens = torch.zeros(2, 6, 8)
    out = module(tokens, (2, 3))
    torch.testing.assert_close(out[1], sincos_2d_position_encoding(2, 3, 8))
    with pytest.raises(ValueError, match=r'expected \(B, 4, 8\)'):
        module(tokens, (2, 2))


def test_dimension_must_split_into_four():
    with pytest.raises(ValueError, match='divisible by 4'):
        SinCos2DPositionEncoding(10)
