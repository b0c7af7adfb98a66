"""The training-step memory estimate (fake tensors) against real steps, and what it must get right."""
import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from openstl_unistd.benchmarks.memory import (
    LiveBytes, cuda_autocast_rules, estimate_training_peak, estimate_training_peaks, measured_training_peak)

from .conftest import TINY_BACKBONE

TASKS = ['mmnist', 'taxibj']


def tiny(checkpointing=False, device=None):
    """A tiny UniSTD (random weights, depth-2 ViT of width 192, C' = 8), on ``device``."""
    from openstl_unistd.models import UniSTD

    torch.manual_seed(0)
    with torch.device(device or 'cpu'):
        return UniSTD(TASKS, hidden_channels=8, checkpointing=checkpointing, **TINY_BACKBONE)


@pytest.mark.parametrize('bf16, checkpointing', [(True, False), (False, False), (True, True)],
                         ids=['bf16', 'fp32', 'bf16-checkpointing'])
def test_the_estimate_agrees_with_the_measured_cpu_peak(bf16, checkpointing):
    estimate = estimate_training_peak(tiny(checkpointing, 'meta'), 'mmnist', 2, bf16=bf16, round_to=1)
    measured = measured_training_peak(tiny(checkpointing), 'mmnist', 2, torch.device('cpu'), bf16=bf16)
    # the allocator's running total between ops (what the estimate models) within 10%; with the CPU
    # kernels' own workspaces (not modelled) the real peak is higher, never lower
    assert abs(estimate.peak / measured.between_ops - 1) < 0.10
    assert estimate.peak <= 1.02 * measured.peak
    assert estimate.peak == estimate.weights + estimate.optimizer + estimate.gradients + estimate.activations


def test_doubling_the_batch_doubles_the_activations_and_nothing_else():
    model = tiny(device='meta')
    small, large = (estimate_training_peak(model, 'mmnist', batch) for batch in (2, 4))
    assert (small.weights, small.optimizer) == (large.weights, large.optimizer)
    assert 1.9 < large.activations / small.activations < 2.1


def test_weights_optimizer_states_and_gradients_are_counted_exactly():
    model = tiny(device='meta')
    estimate = estimate_training_peak(model, 'mmnist', 1, round_to=1)
    parameters = sum(4 * p.numel() for p in model.parameters())
    buffers = sum(b.element_size() * b.numel() for b in model.buffers())
    trainable = sum(4 * p.numel() for p in model.parameters() if p.requires_grad)
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    assert estimate.weights == parameters + buffers
    assert estimate.optimizer == 2 * trainable + 4 * tensors            # exp_avg, exp_avg_sq, a float step each
    assert estimate.gradients <= trainable


def test_checkpointing_the_task_ends_lowers_the_estimate():
    plain = estimate_training_peak(tiny(False, 'meta'), 'mmnist', 2)
    checkpointed = estimate_training_peak(tiny(True, 'meta'), 'mmnist', 2)
    assert checkpointed.peak < 0.8 * plain.peak


def test_every_task_is_estimated_in_one_call_and_the_model_is_left_as_it_was():
    model = tiny(device='meta')
    before = copy.deepcopy(model.state_dict())
    estimates = estimate_training_peaks(model, TASKS, 2)
    assert list(estimates) == TASKS and estimates['mmnist'].peak > estimates['taxibj'].peak > 0
    assert all(p.device.type == 'meta' and p.grad is None for p in model.parameters())
    assert model.state_dict().keys() == before.keys()


def test_bad_input_is_refused_with_a_clear_error():
    model = tiny(device='meta')
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['sevir'\]: the model serves \['mmnist', 'taxibj'\]"):
        estimate_training_peak(model, 'sevir', 2)
    with pytest.raises(ValueError, match='batch_size must be a positive integer, got 0'):
        estimate_training_peak(model, 'mmnist', 0)
    with pytest.raises(TypeError, match='Linear has no task specs'):
        estimate_training_peak(torch.nn.Linear(2, 2), 'mmnist', 1)
    frozen = tiny(device='meta').requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameter'):
        estimate_training_peak(frozen, 'mmnist', 1)


LAYOUT_OPS = {'aten::view', 'aten::_unsafe_view', 'aten::clone', 'aten::alias'}
"""Not compared: a CPU convolution returns channels-last for a channels-last input, as cuDNN does on a
GPU, but fake CUDA tensors on a machine without cuDNN do not, so a later reshape copies on one side only."""


def test_cpu_autocast_with_the_cuda_rules_gives_cuda_autocasts_dtypes_op_for_op():
    """Fake CUDA tensors run a forward under CUDA's own autocast (not a backward: see memory.py);
    the CPU route must give every op the same input and output dtypes."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    from openstl_unistd.benchmarks.memory import _materialize

    class Dtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            dtypes = lambda tree: tuple(t.dtype for t in tree_leaves(tree) if isinstance(t, torch.Tensor))  # noqa: E731
            if func.namespace == 'aten' and func.name() not in LAYOUT_OPS:
                self.ops.append((func.name(), dtypes((args, kwargs)), dtypes(out)))
            return out

    model = tiny(device='meta')
    for module in model.modules():     # SDPA on fake CUDA tensors takes the math path, the CPU its flash kernel
        if hasattr(module, 'fused_attn'):
            module.fused_attn = False
    sequences = {}
    for device, rules in (('cuda', contextlib.nullcontext), ('cpu', cuda_autocast_rules)):
        structure = copy.deepcopy(model)
        with FakeTensorMode(), rules():
            with torch.device(device):
                _materialize(structure, LiveBytes())
                x = torch.empty(2, *model.tasks['mmnist'].input_shape)
            previous = torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)
            torch.set_autocast_enabled(device, True)     # CUDA's autocast context refuses a machine without CUDA
            torch.set_autocast_dtype(device, torch.bfloat16)
            try:
                with Dtypes() as recorded:
                    structure(x, 'mmnist')
            finally:
                torch.set_autocast_enabled(device, previous[0])
                torch.set_autocast_dtype(device, previous[1])
                torch.clear_autocast_cache()
        sequences[device] = recorded.ops
    assert ('aten::native_group_norm', (torch.float32,) * 3, (torch.float32,) * 3) in sequences['cuda']
    assert sequences['cpu'] == sequences['cuda']


def test_the_cuda_rules_apply_only_inside_their_context():
    x = torch.randn(2, 4, 3, 3)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        with cuda_autocast_rules():
            inside = F.group_norm(x.bfloat16(), 2), torch.softmax(x.bfloat16(), -1), x.bfloat16().sum()
        outside = F.group_norm(x.bfloat16(), 2)
    assert [t.dtype for t in inside] == [torch.float32] * 3
    assert outside.dtype == torch.bfloat16


def test_live_bytes_counts_each_storage_once_until_it_is_freed():
    tracker = LiveBytes()
    with tracker:
        a = torch.empty(1000)                  # 4000 bytes
        view = a[10:].view(-1, 10)             # the same storage
        b = a * 2                              # 4000 more
        del a, view
        c = b + 1                              # peak: b and c, the freed a's bytes already gone
    assert tracker.peak == 8000 and tracker.current == 8000
    del b, c
    assert tracker.current == 0
    rounded = LiveBytes(round_to=512)
    with rounded:
        d = torch.empty(3)                     # noqa: F841  (12 bytes take one 512-byte block)
    assert rounded.peak == 512
