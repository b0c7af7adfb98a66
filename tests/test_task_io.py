import pytest
import torch

from openstl_unistd.modules.conv_blocks import norm_groups_for
from openstl_unistd.modules.task_decoder import TaskDecoder
from openstl_unistd.modules.task_encoder import TaskEncoder
from openstl_unistd.tasks import PAPER_TASKS


@pytest.mark.parametrize('name', ['taxibj', 'traffic4cast', 'enso', 'kitti', 'bair'])
def test_encoder_gives_the_token_grid_and_decoder_the_exact_frame_size(name):
    t = PAPER_TASKS[name]
    enc = TaskEncoder(t.input_frames, t.channels, t.height, t.width, t.encoder_depth, embed_dim=32, hidden_channels=4,
                      inner_channels=3)
    dec = TaskDecoder(t.output_frames, t.channels, t.height, t.width, t.encoder_depth, embed_dim=32, hidden_channels=4,
                      inner_channels=3)
    tokens, skip = enc(torch.randn(2, *t.input_shape))
    grid_h, grid_w = t.token_grid
    assert tokens.shape == (2, grid_h * grid_w, 32)
    assert skip.shape == (2 * t.input_frames, 3, t.height, t.width)
    assert dec(tokens).shape == (2, *t.output_shape)
    skip_out = torch.randn(2 * t.output_frames, 3, t.height, t.width)
    assert dec(tokens, skip_out).shape == (2, *t.output_shape)


def test_odd_sizes_come_back_exactly():
    enc = TaskEncoder(3, 2, 25, 37, depth=3, embed_dim=16, hidden_channels=4)
    dec = TaskDecoder(5, 2, 25, 37, depth=3, embed_dim=16, hidden_channels=4)
    tokens, _ = enc(torch.randn(1, 3, 2, 25, 37))
    assert enc.grid == (4, 5) and tokens.shape == (1, 20, 16)
    assert dec(tokens).shape == (1, 5, 2, 25, 37)


def test_frames_stay_separate_until_the_projection():
    """Time is folded into the batch: changing frame 2 changes only its slice before projection."""
    enc = TaskEncoder(3, 1, 16, 16, depth=1, embed_dim=8, hidden_channels=4).eval()
    x = torch.randn(1, 3, 1, 16, 16)
    y = x.clone()
    y[:, 2] += 1.0
    fx, _ = enc.blocks[0](x.reshape(3, 1, 16, 16))
    fy, _ = enc.blocks[0](y.reshape(3, 1, 16, 16))
    assert torch.equal(fx[:2], fy[:2]) and not torch.equal(fx[2], fy[2])


def test_table_8_widths_odd_frame_counts_get_one_norm_group():
    assert [norm_groups_for(c) for c in (64, 10, 9, 3, 1)] == [2, 2, 1, 1, 1]
    enc = TaskEncoder(9, 8, 32, 28, depth=2, embed_dim=16, hidden_channels=4, inner_channels=9)
    assert enc.blocks[0].keep[0].out_channels == 9 and enc.blocks[0].keep[1].num_groups == 1
    assert enc.blocks[1].keep[0].in_channels == 4 and enc.blocks[1].down[0].in_channels == 9
