import pytest
import torch

from openstl_unistd.modules.task_decoder import TaskDecoder
from openstl_unistd.modules.task_encoder import TaskEncoder
from openstl_unistd.tasks import PAPER_TASKS


@pytest.mark.parametrize('name', ['taxibj', 'traffic4cast', 'enso', 'kitti', 'bair'])
def test_encoder_gives_the_token_grid_and_decoder_the_exact_frame_size(name):
    t = PAPER_TASKS[name]
    enc = TaskEncoder(t.input_frames, t.channels, t.height, t.width, t.encoder_depth, embed_dim=32, hidden_channels=4)
    dec = TaskDecoder(t.output_frames, t.channels, t.height, t.width, t.encoder_depth, embed_dim=32, hidden_channels=4)
    tokens = enc(torch.randn(2, *t.input_shape))
    grid_h, grid_w = t.token_grid
    assert tokens.shape == (2, grid_h * grid_w, 32)
    assert dec(tokens).shape == (2, *t.output_shape)


def test_odd_sizes_come_back_exactly():
    enc = TaskEncoder(3, 2, 25, 37, depth=3, embed_dim=16, hidden_channels=4)
    dec = TaskDecoder(5, 2, 25, 37, depth=3, embed_dim=16, hidden_channels=4)
    tokens = enc(torch.randn(1, 3, 2, 25, 37))
    assert enc.grid == (4, 5) and tokens.shape == (1, 20, 16)
    assert dec(tokens).shape == (1, 5, 2, 25, 37)


def test_frames_stay_separate_until_the_projection():
    """Time is folded into the batch: changing frame 2 changes only its slice before projection."""
    enc = TaskEncoder(3, 1, 16, 16, depth=1, embed_dim=8, hidden_channels=4).eval()
    x = torch.randn(1, 3, 1, 16, 16)
    y = x.clone()
    y[:, 2] += 1.0
    fx = enc.blocks(x.reshape(3, 1, 16, 16))
    fy = enc.blocks(y.reshape(3, 1, 16, 16))
    assert torch.equal(fx[:2], fy[:2]) and not torch.equal(fx[2], fy[2])
