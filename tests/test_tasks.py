import pytest
import torch
from torch import nn

from openstl_unistd.datasets.registry import loader_class
from openstl_unistd.tasks import PAPER_TASKS, TaskSpec, get_task, halved_sizes, resolve_task, resolve_tasks

# The paper's ten tasks: (T, T', C, H, W) of Table 1 and the encoder depth n of Table 8, with the token grid
# (H', W') = (H, W) / 2^n that Table 8's encoders give.
PAPER_TABLE = {
    'taxibj': ((4, 4, 2, 32, 32, 2), (8, 8)),
    'traffic4cast': ((9, 3, 8, 128, 112, 3), (16, 14)),
    'mmnist': ((10, 10, 1, 64, 64, 3), (8, 8)),
    'bair': ((2, 10, 3, 64, 64, 2), (16, 16)),
    'human': ((4, 4, 3, 256, 256, 4), (16, 16)),
    'kth': ((10, 10, 1, 128, 128, 3), (16, 16)),
    'cityscapes': ((2, 5, 3, 128, 128, 3), (16, 16)),
    'kitti': ((10, 10, 3, 128, 160, 3), (16, 20)),
    'sevir': ((13, 12, 1, 384, 384, 4), (24, 24)),
    'enso': ((12, 14, 1, 24, 48, 1), (12, 24)),
}


def stride_two_grid(height: int, width: int, times: int) -> tuple[int, int]:
    """The frame size after ``times`` 3×3, stride-2, padding-1 convolutions, as torch computes it."""
    with torch.device('meta'):
        convolutions = nn.Sequential(*[nn.Conv2d(1, 1, 3, stride=2, padding=1) for _ in range(times)])
        return tuple(convolutions(torch.empty(1, 1, height, width)).shape[-2:])


def test_paper_tasks_are_the_papers_and_fit_their_loaders_and_encoders():
    """The code's tasks against three references: the paper's table, the frame shape each loader
    declares (what it reads from the public files), and torch's own stride-2 convolutions. Break caught:
    a loader and its task disagreeing on the frame (e.g. Traffic4Cast's crop declared 128 × 128 in
    ``datasets/traffic4cast.py``), which only a run on the real data would otherwise reveal."""
    assert list(PAPER_TASKS) == list(PAPER_TABLE)
    for name, ((t, t_out, c, h, w, n), grid) in PAPER_TABLE.items():
        spec = PAPER_TASKS[name]
        assert (spec.input_frames, spec.output_frames, spec.channels, spec.height, spec.width,
                spec.encoder_depth) == (t, t_out, c, h, w, n), name
        assert loader_class(name).frame_shape == (c, h, w), name
        assert spec.token_grid == grid == stride_two_grid(h, w, n), name


def test_halved_sizes_round_up_like_a_stride_two_convolution():
    assert halved_sizes(25, 112, 3) == [(25, 112), (13, 56), (7, 28), (4, 14)]
    assert [halved_sizes(25, 112, n)[-1] for n in range(4)] == [stride_two_grid(25, 112, n) for n in range(4)]


def test_unknown_task_name_lists_known_tasks():
    with pytest.raises(ValueError, match=r"unknown task 'mnist'.*mmnist"):
        get_task('mnist')


def test_invalid_field_names_task_and_field():
    with pytest.raises(ValueError, match=r"task 'x': height must be a positive integer, got 0"):
        TaskSpec('x', 1, 1, 1, 0, 8, 1)


def test_dict_entries_override_known_tasks_or_define_new_ones():
    kth20 = resolve_task(dict(name='kth', output_frames=20))
    assert kth20.output_frames == 20 and kth20.input_frames == 10
    custom = resolve_task(dict(name='mine', input_frames=3, output_frames=2, channels=1, height=40, width=40,
                               encoder_depth=2))
    assert custom.token_grid == (10, 10)
    with pytest.raises(ValueError, match=r"'mine' is not a known task, so it must give"):
        resolve_task(dict(name='mine', input_frames=3))
    with pytest.raises(KeyError, match=r"unknown key\(s\) \['frames'\]"):
        resolve_task(dict(name='kth', frames=3))


def test_task_names_must_be_unique():
    with pytest.raises(ValueError, match='repeated'):
        resolve_tasks(['kth', 'kth'])
