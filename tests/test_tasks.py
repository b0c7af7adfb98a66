import pytest

from openstl_unistd.tasks import PAPER_TASKS, TaskSpec, get_task, halved_sizes, resolve_task, resolve_tasks

# docs/method.md#task-table: (T, T', C, H, W, n) and token grid of each paper task.
METHOD_TABLE = {
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


def test_paper_tasks_match_the_method_table():
    assert list(PAPER_TASKS) == list(METHOD_TABLE)
    for name, (shape, grid) in METHOD_TABLE.items():
        t = PAPER_TASKS[name]
        assert (t.input_frames, t.output_frames, t.channels, t.height, t.width, t.encoder_depth) == shape
        assert t.token_grid == grid


def test_halved_sizes_round_up_like_a_stride_two_convolution():
    assert halved_sizes(25, 112, 3) == [(25, 112), (13, 56), (7, 28), (4, 14)]


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
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['frames'\]"):
        resolve_task(dict(name='kth', frames=3))


def test_task_names_must_be_unique():
    with pytest.raises(ValueError, match='repeated'):
        resolve_tasks(['kth', 'kth'])
