"""UniSTD's task ends: OpenSTL's rollout, the SimVP skip path, Table 8's widths (issue: task ends)."""
import pytest
import torch

from openstl_unistd.models import MultiTaskSimVP
from openstl_unistd.models.rollout import roll_out

from .conftest import TINY_BACKBONE

SHORT_TO_LONG = dict(name='short_to_long', input_frames=2, output_frames=10, channels=1, height=16, width=16,
                     encoder_depth=2)
SAME_LENGTH = dict(name='same_length', input_frames=3, output_frames=3, channels=1, height=16, width=16,
                   encoder_depth=2)
LONG_TO_SHORT = dict(name='long_to_short', input_frames=4, output_frames=3, channels=2, height=16, width=16,
                     encoder_depth=2)


def unistd(tasks, **options):
    from openstl_unistd.models import UniSTD

    torch.manual_seed(0)
    return UniSTD(tasks, hidden_channels=8, **{**TINY_BACKBONE, **options}).double().eval()


def with_trained_looking_adapters(model):
    """LoRA B is zero at start, so adapters add nothing; give them weights so the test sees them."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith('lora_B') or name.endswith('ffn.2.weight'):
                parameter.normal_(0, 0.05)
    return model


def test_rollout_to_ten_frames_from_two_equals_five_chained_passes():
    model = with_trained_looking_adapters(unistd([SHORT_TO_LONG]))
    x = torch.randn(3, 2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        y = model(x, 'short_to_long')
        chained, current = [], x
        for _ in range(5):
            current = model.step(current, 'short_to_long')
            chained.append(current)
    assert model.passes('short_to_long') == 5
    assert y.shape == (3, 10, 1, 16, 16)
    torch.testing.assert_close(y, torch.cat(chained, dim=1), rtol=0, atol=0)


def test_rollout_of_fewer_frames_than_inputs_truncates_one_pass():
    model = unistd([LONG_TO_SHORT])
    x = torch.randn(2, 4, 2, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        one_pass = model.step(x, 'long_to_short')
        y = model(x, 'long_to_short')
    assert one_pass.shape[1] == 4 and model.passes('long_to_short') == 1
    torch.testing.assert_close(y, one_pass[:, :3], rtol=0, atol=0)


def test_gradients_reach_the_encoder_and_the_input_through_every_pass():
    model = unistd([SHORT_TO_LONG]).train()
    x = torch.randn(2, 2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    y = model(x, 'short_to_long')
    y[:, -2:].sum().backward()  # only the fifth pass's frames: its inputs are the fourth pass's outputs
    assert x.grad.abs().sum() > 0  # so this gradient went back through passes 4, 3, 2 and 1
    first_conv = model.encoders['short_to_long'].blocks[0].keep[0].weight
    assert first_conv.grad.abs().sum() > 0


def test_roll_out_feeds_predictions_back_whatever_the_pass_length():
    calls = []

    def step(past):  # "predicts" the next 3 frames as the last input frame + 1, 2, 3
        calls.append(past.clone())
        return past[:, -1:] + torch.arange(1, 4, dtype=past.dtype).view(1, 3, 1)

    x = torch.zeros(1, 4, 1)
    y = roll_out(step, x, 7)
    assert y.flatten().tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert [c.flatten().tolist() for c in calls] == [[0, 0, 0, 0], [0, 1, 2, 3], [3, 4, 5, 6]]


@pytest.mark.parametrize('decode', ['rollout', 'direct'])
def test_the_skip_path_carries_the_last_frame_pixel_by_pixel(decode):
    task = SHORT_TO_LONG if decode == 'direct' else SAME_LENGTH
    name = task['name']
    for skip in (True, False):
        model = unistd([task], skip=skip, decode=decode)
        with torch.no_grad():
            model.decoders[name].proj.weight.zero_()  # the token path carries nothing
            model.decoders[name].proj.bias.zero_()
        x = torch.rand(1, *model.task(name).input_shape, dtype=torch.float64)
        moved = x.clone()
        moved[0, -1, 0, 5, 9] += 1.0
        with torch.no_grad():
            change = (model(moved, name) - model(x, name)).abs().amax(dim=(0, 1, 2))
        if not skip:
            assert change.max() == 0
            continue
        # the moved pixel's neighbourhood (a 3×3 conv in the encoder and one in the decoder: radius 2)
        # changes most; elsewhere only the GroupNorm statistics move, an order of magnitude less
        near = torch.zeros_like(change, dtype=torch.bool)
        near[3:8, 7:12] = True
        assert near.flatten()[change.argmax()]
        assert change[~near].max() < 0.1 * change[near].max()


def test_rollout_skip_comes_from_each_frame_and_direct_from_the_last():
    for decode, task, moved_frame, changed_outputs in (('rollout', LONG_TO_SHORT, 1, [1]),
                                                       ('direct', SHORT_TO_LONG, 0, [])):
        model = unistd([task], decode=decode)
        name = task['name']
        with torch.no_grad():
            model.decoders[name].proj.weight.zero_()
            model.decoders[name].proj.bias.zero_()
            x = torch.rand(1, *model.task(name).input_shape, dtype=torch.float64)
            moved = x.clone()
            moved[0, moved_frame] += 1.0
            diff = (model(moved, name) - model(x, name)).abs().amax(dim=(0, 2, 3, 4))
        assert [i for i, d in enumerate(diff.tolist()) if d > 0] == changed_outputs


def test_skip_false_removes_the_skip_and_nothing_else():
    with_skip, without = unistd([SHORT_TO_LONG, LONG_TO_SHORT]), unistd([SHORT_TO_LONG, LONG_TO_SHORT], skip=False)
    shapes = lambda m: {n: tuple(p.shape) for n, p in m.state_dict().items()}  # noqa: E731
    assert shapes(with_skip) == shapes(without)
    without.load_state_dict(with_skip.state_dict())
    x = torch.rand(1, 4, 2, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.equal(with_skip(x, 'long_to_short'), without(x, 'long_to_short'))
        without.skip = True
        torch.testing.assert_close(with_skip(x, 'long_to_short'), without(x, 'long_to_short'), rtol=0, atol=0)


def test_table_8_reading_sets_the_stride_1_width_to_the_frames_of_a_pass():
    rollout = unistd([SHORT_TO_LONG], inner_channels='frames')
    direct = unistd([SHORT_TO_LONG], inner_channels='frames', decode='direct')
    wide = unistd([SHORT_TO_LONG], inner_channels=8)
    width = lambda m: m.encoders['short_to_long'].blocks[1].keep[0].out_channels  # noqa: E731
    assert (width(rollout), width(direct), width(wide)) == (2, 10, 8)
    assert rollout.decoders['short_to_long'].blocks[-1].up.out_channels == 2
    with pytest.raises(ValueError, match="inner_channels must be 'frames' or a positive integer, got 'T'"):
        unistd([SHORT_TO_LONG], inner_channels='T')
    with pytest.raises(ValueError, match=r"decode must be one of \('direct', 'rollout'\), got 'chain'"):
        unistd([SHORT_TO_LONG], decode='chain')


def test_simvp_baseline_rolls_out_the_same_way():
    torch.manual_seed(0)
    model = MultiTaskSimVP([SHORT_TO_LONG, LONG_TO_SHORT], model_type='tau', hid_S=4, hid_T=8, N_S=2, N_T=2).double()
    x = torch.randn(2, 2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        y = model(x, 'short_to_long')
        current, chained = x, []
        for _ in range(5):
            current = model.step(current, 'short_to_long')
            chained.append(current)
    torch.testing.assert_close(y, torch.cat(chained, dim=1), rtol=0, atol=0)
    assert model(torch.randn(1, 4, 2, 16, 16, dtype=torch.float64), 'long_to_short').shape == (1, 3, 2, 16, 16)
