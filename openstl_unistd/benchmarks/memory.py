"""Peak device memory of one training step, estimated on the CPU without allocating its tensors.

The step is the training method's (``methods/multitask.py``): forward of one task under autocast,
MSE loss, ``zero_grad(set_to_none=True)``, backward, one AdamW step on the trainable parameters.
:func:`estimate_training_peak` runs it on fake tensors (``FakeTensorMode``: shapes, dtypes and
storages, no data) under :class:`LiveBytes`, which counts the bytes of every live storage and keeps
their maximum over the step: the peak, transient backward buffers included, not only the sum of the
tensors saved for backward. :func:`measured_training_peak` runs the same step on real tensors.

**CUDA's autocast on the CPU.** Fake CUDA tensors run a forward with CUDA autocast's rules, but the
autograd engine refuses their backward on a machine without a GPU (``hasPrimaryContext`` on device
0), so the estimate runs on fake CPU tensors under CPU autocast with CUDA's rules added
(:func:`cuda_autocast_rules`): CPU autocast casts the same matmuls and convolutions to bf16, but
keeps GroupNorm, LayerNorm, softmax and sums in the input dtype where CUDA computes them in fp32 —
for the task ends that is most of the memory. Attention runs through
``scaled_dot_product_attention`` as on the GPU; on the CPU it is the flash kernel, which saves what
CUDA's flash kernel saves (bf16 output, fp32 log-sum-exp). ``tests/test_memory.py`` checks that a
UniSTD forward gets the same op and dtype sequence this way as on fake CUDA tensors.

Counted: parameters and buffers (a frozen backbone too), the optimizer's states in their steady
state (every trainable parameter's, as after steps of every task), the gradients of the previous
step still alive during the forward (the method sets them to ``None`` only before backward), the
inputs and targets, every activation and temporary, autocast's cached weight casts, each storage
rounded up to the CUDA caching allocator's 512-byte blocks. Not counted: the allocator's larger
segments and fragmentation, cuBLAS/cuDNN/flash-attention workspaces, the CUDA context (~0.5–1 GB
outside PyTorch's allocator), and anything Lightning or a data loader keeps on the device. The step
is the eager one: a region under ``torch.compile`` may keep fewer tensors for its backward.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import weakref
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map_only

from ..errors import UserValueError

GIB = 2 ** 30

CUDA_BLOCK_BYTES = 512
"""The CUDA caching allocator rounds every allocation up to a multiple of this."""

CUDA_FP32_OPS = (
    'acos', 'asin', 'cosh', 'erfinv', 'exp', 'expm1', 'log', 'log10', 'log2', 'log1p', 'reciprocal', 'rsqrt',
    'sinh', 'tan', 'pow.Tensor_Scalar', 'pow.Tensor_Tensor', 'pow.Scalar', 'softplus', 'layer_norm',
    'native_layer_norm', 'group_norm', 'frobenius_norm.dim', 'nuclear_norm', 'nuclear_norm.dim',
    'cosine_similarity', 'poisson_nll_loss', 'cosine_embedding_loss', 'nll_loss', 'nll_loss2d',
    'hinge_embedding_loss', 'kl_div', 'l1_loss', 'smooth_l1_loss', 'huber_loss', 'mse_loss',
    'margin_ranking_loss', 'multilabel_margin_loss', 'soft_margin_loss', 'triplet_margin_loss',
    'multi_margin_loss', 'binary_cross_entropy_with_logits', 'dist', 'pdist', 'cdist', 'renorm', 'logsumexp',
    'upsample_nearest1d', 'upsample_nearest2d', 'upsample_nearest3d', 'upsample_linear1d', 'upsample_bilinear2d',
    'upsample_trilinear3d', 'upsample_bicubic2d',
)
"""Ops CUDA autocast runs in fp32 (``AT_FORALL_FP32`` in ATen's ``autocast_mode.h``)."""

CUDA_FP32_DTYPE_OPS = (
    'prod', 'prod.dim_int', 'softmax.int', 'log_softmax.int', 'cumprod', 'cumsum', 'linalg_vector_norm',
    'linalg_matrix_norm', 'sum', 'sum.dim_IntList',
)
"""Ops CUDA autocast gives ``dtype=float32`` when none is set (``AT_FORALL_FP32_SET_OPT_DTYPE``)."""

CUDA_LOWER_PRECISION_OPS = ('addmv', 'addr', 'mv')
"""Ops CUDA autocast runs in bf16 that CPU autocast leaves alone (CPU's other lower-precision ops
match CUDA's or decompose into them: ``einsum`` into ``bmm``, ``conv2d`` as CUDA)."""


def _is_autocast_candidate(value) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float64


def _cast_kernel(op, dtype: Optional[torch.dtype]):
    """An AutocastCPU kernel for ``op``: floating tensor inputs cast to ``dtype`` (``None``: autocast's
    dtype), then ``op`` below autocast, as ATen's ``WrapFunction`` does."""
    below = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)

    def kernel(*args, **kwargs):
        target = dtype or torch.get_autocast_dtype('cpu')
        args, kwargs = tree_map_only(torch.Tensor, lambda t: t.to(target) if _is_autocast_candidate(t) else t,
                                     (args, kwargs))
        with torch._C._ExcludeDispatchKeyGuard(below):
            return op(*args, **kwargs)

    return kernel


def _fp32_dtype_kernel(op):
    """An AutocastCPU kernel that sets ``dtype=float32`` when the first input is a float tensor and no
    dtype is given (ATen's ``fp32_set_opt_dtype`` policy)."""
    below = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)
    names = [argument.name for argument in op._schema.arguments]
    position = names.index('dtype')

    def kernel(*args, **kwargs):
        if _is_autocast_candidate(args[0]):
            if len(args) > position:
                if args[position] is None:
                    args = (*args[:position], torch.float32, *args[position + 1:])
            elif kwargs.get('dtype') is None:
                kwargs = {**kwargs, 'dtype': torch.float32}
        with torch._C._ExcludeDispatchKeyGuard(below):
            return op(*args, **kwargs)

    return kernel


def _overload(name: str):
    op_name, _, overload = name.partition('.')
    return getattr(getattr(torch.ops.aten, op_name), overload or 'default')


@contextlib.contextmanager
def cuda_autocast_rules() -> Iterator[None]:
    """Within this context CPU autocast applies CUDA autocast's op lists where CPU has no rule of its
    own (an op CPU autocast already handles keeps CPU's rule: none of these models uses such an op
    whose rules differ). The kernels are registered process-wide while the context lasts; they act
    only where CPU autocast is on."""
    library = torch.library.Library('aten', 'IMPL')
    rules = ([(name, lambda op: _cast_kernel(op, torch.float32)) for name in CUDA_FP32_OPS]
             + [(name, _fp32_dtype_kernel) for name in CUDA_FP32_DTYPE_OPS]
             + [(name, lambda op: _cast_kernel(op, None)) for name in CUDA_LOWER_PRECISION_OPS])
    try:
        for name, make in rules:
            op = _overload(name)
            if not torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), 'AutocastCPU'):
                library.impl(name, make(op), 'AutocastCPU')
        yield
    finally:
        library._destroy()


class LiveBytes(TorchDispatchMode):
    """Bytes of the live tensor storages, each storage counted once, and their peak.

    A storage counts from the op that returns it (or :meth:`track`) until it is freed (a weak
    reference's callback). Each storage carries a label (``'activations'`` unless :meth:`track` gives
    one); :attr:`at_peak` holds the bytes per label at the peak. ``round_to`` rounds each storage up
    as an allocator would (:data:`CUDA_BLOCK_BYTES`; 1 for exact bytes).
    """

    def __init__(self, round_to: int = 1) -> None:
        super().__init__()
        self.round_to = round_to
        self.current = 0
        self.peak = 0
        self.phase = ''
        self.peak_phase = ''
        self.at_peak: dict[str, int] = {}
        self._by_label: dict[str, int] = {}
        self._live: dict[int, tuple[weakref.ref, int, str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_leaves(out):
            if isinstance(value, torch.Tensor):
                self.track(value)
        return out

    def track(self, tensor: torch.Tensor, label: Optional[str] = None) -> None:
        """Count ``tensor``'s storage if it is not counted yet; with ``label``, under that label."""
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._live:
            if label is not None:
                ref, size, old = self._live[key]
                self._add(old, -size)
                self._add(label, size)
                self._live[key] = (ref, size, label)
            return
        size = self.rounded(storage.nbytes())
        label = label or 'activations'
        self._live[key] = (weakref.ref(storage, lambda _, key=key: self._free(key)), size, label)
        self.current += size
        self._add(label, size)
        if self.current > self.peak:
            self.reset_peak()

    def rounded(self, nbytes: int) -> int:
        """``nbytes`` rounded up to the allocator's block."""
        return -(-nbytes // self.round_to) * self.round_to

    def _add(self, label: str, size: int) -> None:
        self._by_label[label] = self._by_label.get(label, 0) + size
        if self.current == self.peak:
            self.at_peak = dict(self._by_label)

    def _free(self, key: int) -> None:
        _, size, label = self._live.pop(key)
        self.current -= size
        self._add(label, -size)

    def reset_peak(self) -> None:
        """Start a new peak from what is live now."""
        self.peak, self.peak_phase, self.at_peak = self.current, self.phase, dict(self._by_label)


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one training step and what was live at the peak.

    ``activations`` is everything else live at the peak: the tensors saved for backward, the inputs,
    the temporaries of the op running then, autocast's weight casts.
    """

    peak: int
    weights: int
    optimizer: int
    gradients: int
    activations: int
    phase: str

    @classmethod
    def from_tracker(cls, tracker: LiveBytes) -> 'MemoryEstimate':
        parts = tracker.at_peak
        return cls(tracker.peak, parts.get('weights', 0), parts.get('optimizer', 0), parts.get('gradients', 0),
                   parts.get('activations', 0), tracker.peak_phase)


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, task: str,
                  bf16: bool, phase: Callable[[str], None] = lambda name: None) -> None:
    """One step as the training method takes it: forward and loss under autocast, gradients set to
    ``None`` only then (the previous step's live through the forward), backward, AdamW step."""
    phase('forward')
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = F.mse_loss(model(x, task), y)
    optimizer.zero_grad(set_to_none=True)
    phase('backward')
    loss.backward()
    del loss
    phase('optimizer step')
    optimizer.step()


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW on the trainable parameters, foreach as on CUDA."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise UserValueError('the model has no trainable parameter: a training step has nothing to update')
    return torch.optim.AdamW(trainable, lr=1e-4, foreach=True)


def _steady_optimizer_states(optimizer: torch.optim.Optimizer) -> None:
    """Create the states of every parameter (as after steps of every task) with one step on zero gradients."""
    parameters = [p for group in optimizer.param_groups for p in group['params']]
    for parameter in parameters:
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _previous_gradients(model: nn.Module, x: torch.Tensor, task: str, bf16: bool) -> None:
    """Give every parameter that a step of ``task`` trains a (zero) gradient: what the previous step of
    the task leaves alive into this step's forward. Found from the autograd graph of one forward."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x[:1], task)
    stack, seen, reached = [out.grad_fn], set(), []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, 'variable'):
            reached.append(node.variable)
        stack.extend(child for child, _ in node.next_functions)
    del out, stack, seen
    for parameter in reached:
        parameter.grad = torch.zeros_like(parameter)


def _check_step(model: nn.Module, tasks: Sequence[str], batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    served = getattr(model, 'tasks', None)
    if not isinstance(served, dict):
        raise TypeError(f'{type(model).__name__} has no task specs (a dict `tasks`): it is not a multi-task model')
    unknown = [task for task in tasks if task not in served]
    if unknown:
        raise UserValueError(f'unknown task(s) {unknown}: the model serves {sorted(served)}')


def estimate_training_peaks(model: nn.Module, tasks: Sequence[str], batch_size: int, bf16: bool = True,
                            round_to: int = CUDA_BLOCK_BYTES) -> dict[str, MemoryEstimate]:
    """Peak device memory of one :func:`training_step` of ``model`` per task of ``tasks`` at ``batch_size``.

    ``model`` gives the structure only (build it on the ``meta`` device: nothing is allocated); it is
    copied onto fake tensors once, with the optimizer states of all its trainable parameters. Per
    task one step runs; the gradients it makes are those the previous step (of the same task) keeps
    alive through the forward, and are added to the forward's peak. See the module docstring.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    tasks = list(tasks)
    _check_step(model, tasks, batch_size)
    structure = copy.deepcopy(model)
    tracker = LiveBytes(round_to)
    rules = cuda_autocast_rules() if bf16 else contextlib.nullcontext()
    estimates = {}
    with FakeTensorMode(), tracker, rules:
        _materialize(structure, tracker)
        optimizer = _optimizer(structure)
        _steady_optimizer_states(optimizer)
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    tracker.track(value, 'optimizer')
        hooks = [p.register_post_accumulate_grad_hook(lambda p: tracker.track(p.grad, 'gradients'))
                 for p in structure.parameters() if p.requires_grad]
        structure.train()
        for task in tasks:
            spec = structure.tasks[task]
            x = torch.empty(batch_size, *spec.input_shape)
            y = torch.empty(batch_size, *spec.output_shape)
            tracker.reset_peak()
            phases = {}

            def phase(name: str) -> None:
                if name == 'backward':
                    phases['forward'] = MemoryEstimate.from_tracker(tracker)
                    tracker.reset_peak()
                tracker.phase = name

            training_step(structure, optimizer, x, y, task, bf16, phase=phase)
            # the previous step's gradients (of this task) live through the forward, until zero_grad
            # (each storage once: a node may hand out gradients that are slices of one tensor)
            storages = {id(s): s for s in (p.grad.untyped_storage() for p in structure.parameters()
                                           if p.grad is not None)}
            grads = sum(tracker.rounded(storage.nbytes()) for storage in storages.values())
            before = phases['forward']
            forward = replace(before, peak=before.peak + grads, gradients=before.gradients + grads)
            estimates[task] = max(forward, MemoryEstimate.from_tracker(tracker), key=lambda e: e.peak)
            optimizer.zero_grad(set_to_none=True)
            del x, y
        for hook in hooks:
            hook.remove()
    return estimates


def estimate_training_peak(model: nn.Module, task: str, batch_size: int, bf16: bool = True,
                           round_to: int = CUDA_BLOCK_BYTES) -> MemoryEstimate:
    """:func:`estimate_training_peaks` for one task."""
    return estimate_training_peaks(model, [task], batch_size, bf16, round_to)[task]


def _materialize(model: nn.Module, tracker: LiveBytes) -> None:
    """Replace every parameter and buffer of ``model`` by an empty tensor of the current mode, counted as
    weights (shared tensors stay shared)."""
    made: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for store in (module._parameters, module._buffers):
            for name, value in store.items():
                if value is None:
                    continue
                if id(value) not in made:
                    tensor = torch.empty(value.shape, dtype=value.dtype)
                    if isinstance(value, nn.Parameter):
                        tensor = nn.Parameter(tensor, requires_grad=value.requires_grad)
                    tracker.track(tensor, 'weights')
                    made[id(value)] = tensor
                store[name] = made[id(value)]


def _storages_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages of ``tensors``."""
    storages = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _cpu_allocation_peaks(profiler) -> tuple[int, int]:
    """``(peak, peak between ops)`` of the running sum of the CPU allocations and frees that a
    ``profile_memory=True`` profiler recorded: at every allocation, and only at the ends of the top-level
    ``aten::`` ops (after an op has freed its own workspace)."""
    events = list(profiler.profiler.kineto_results.events())
    changes = sorted((e.start_ns(), e.nbytes()) for e in events
                     if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU)
    ends, open_until = [], {}
    for start, end, thread in sorted((e.start_ns(), e.end_ns(), e.start_thread_id()) for e in events
                                     if e.name().startswith('aten::')):
        if start >= open_until.get(thread, -1):
            ends.append(end)
        open_until[thread] = max(open_until.get(thread, -1), end)
    running = peak = between = index = 0
    for end in sorted(ends) + [float('inf')]:
        while index < len(changes) and changes[index][0] <= end:
            running += changes[index][1]
            peak = max(peak, running)
            index += 1
        between = max(between, running)
    return peak, between


@dataclass(frozen=True)
class MeasuredPeak:
    """Peak bytes of a real step: ``peak`` counts every allocation (kernel workspaces too);
    ``between_ops`` (CPU only) the live bytes sampled between top-level ops, as the estimate counts."""

    peak: int
    between_ops: Optional[int] = None


def measured_training_peak(model: nn.Module, task: str, batch_size: int, device: torch.device,
                           bf16: bool = True) -> MeasuredPeak:
    """Peak bytes of one real :func:`training_step`, prepared as :func:`estimate_training_peaks` prepares it
    (optimizer states of every trainable parameter, the previous step's gradients).

    On CUDA: ``torch.cuda.max_memory_allocated`` during the step. On the CPU: the bytes of the live
    storages before the step plus the highest running sum of the allocations and frees that
    ``torch.profiler`` (``profile_memory=True``) records during it. ``bf16`` on the CPU applies CUDA's
    autocast rules (:func:`cuda_autocast_rules`) as the estimate does.
    """
    from torch.profiler import ProfilerActivity, profile

    _check_step(model, [task], batch_size)
    model = model.to(device).train()
    spec = model.tasks[task]
    optimizer = _optimizer(model)
    rules = cuda_autocast_rules() if bf16 and device.type == 'cpu' else contextlib.nullcontext()
    with rules:
        _steady_optimizer_states(optimizer)
        x = torch.randn(batch_size, *spec.input_shape, device=device)
        y = torch.randn(batch_size, *spec.output_shape, device=device)
        _previous_gradients(model, x, task, bf16)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            training_step(model, optimizer, x, y, task, bf16)
            torch.cuda.synchronize(device)
            return MeasuredPeak(torch.cuda.max_memory_allocated(device))
        states = (v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor))
        grads = (p.grad for p in model.parameters() if p.grad is not None)
        before = _storages_bytes(itertools.chain(model.parameters(), model.buffers(), states, grads, [x, y]))
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            training_step(model, optimizer, x, y, task, bf16)
        peak, between_ops = _cpu_allocation_peaks(profiler)
        return MeasuredPeak(before + peak, before + between_ops)
