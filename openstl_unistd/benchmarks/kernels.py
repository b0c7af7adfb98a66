"""Kernels launched by one ViT block in a training step, and the step's roofline time (docs/performance.md).

On a GPU a small kernel costs its launch (several µs) whatever it computes, so the adapters' cost
on the hot path is their kernel count as much as their FLOPs. Both are measurable on the CPU:

- **Eager kernels**: a ``TorchDispatchMode`` sees every ATen operator below autograd and autocast,
  i.e. what a GPU launches (a cast, a matmul, an elementwise op: one kernel each); views,
  allocations and metadata launch nothing and are not counted. CPU and CUDA bf16 autocast give the
  same operator/dtype sequence, so the count carries over.
- **Compiled kernels**: the profiler's events of one compiled step, each kernel Inductor generated
  (``cpp_fused_*`` on the CPU, ``triton_*`` on a GPU) plus each library call it makes (matmuls, SDPA,
  scatters), again without views and allocations.
- **Roofline**: every operator of the eager step at the paper shape (fake tensors, nothing is
  computed) costs ``max(FLOPs / peak, bytes / bandwidth)``, H200 bf16 figures by default; bytes are
  what it reads and writes. The sum is the time the step cannot beat without fusing operators.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

H200_FLOPS = 989e12
"""Dense bf16 peak of an H100/H200 (FLOP/s)."""
H200_BYTES = 4.8e12
"""HBM3e bandwidth of an H200 (bytes/s)."""

_aten = torch.ops.aten
KERNEL_FREE = {_aten.empty.memory_format, _aten.empty_strided.default, _aten.empty_like.default,
               _aten.new_empty.default, _aten.new_empty_strided.default, _aten.detach.default,
               _aten._unsafe_view.default, _aten.lift_fresh.default, _aten.lift_fresh_copy.default,
               _aten._local_scalar_dense.default}
"""Operators that allocate or relabel memory without running a kernel (views are recognized by schema)."""

PROFILER_KERNEL_FREE = {'aten::as_strided', 'aten::view', 'aten::resolve_conj', 'aten::resolve_neg', 'aten::detach',
                        'aten::empty', 'aten::empty_strided', 'aten::empty_like', 'aten::select', 'aten::transpose',
                        'aten::expand', 'aten::t', 'aten::slice', 'aten::alias', 'aten::reshape', 'aten::permute',
                        'aten::unsqueeze', 'aten::squeeze', 'aten::_unsafe_view', 'aten::lift_fresh',
                        'aten::resize_', 'aten::set_', 'aten::unbind', 'aten::split', 'aten::chunk',
                        'aten::_reshape_alias', 'aten::narrow'}
"""The same, as profiler event names (what compiled code calls between its generated kernels)."""


def _launches_kernel(func) -> bool:
    if func in KERNEL_FREE or func.is_view:
        return False
    returns = func._schema.returns
    return bool(returns) and any('Tensor' in str(r.type) for r in returns)


def _tensors(values) -> list[torch.Tensor]:
    flat, _ = torch.utils._pytree.tree_flatten(values)
    return [v for v in flat if isinstance(v, torch.Tensor)]


class KernelCounter(TorchDispatchMode):
    """Counts the kernels an eager computation launches, with each one's FLOPs and bytes moved.

    ``count``: kernels; ``by_operator``: kernels per ATen operator name; ``roofline_seconds(peak,
    bandwidth)``: Σ over kernels of ``max(flops / peak, bytes / bandwidth)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_operator: dict[str, int] = {}
        self.costs: list[tuple[float, float]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if _launches_kernel(func):
            name = func.overloadpacket.__name__
            self.by_operator[name] = self.by_operator.get(name, 0) + 1
            self.costs.append((_flops(func, args, kwargs, out), _bytes(args, kwargs, out)))
        return out

    @property
    def count(self) -> int:
        return len(self.costs)

    @property
    def flops(self) -> float:
        return sum(flops for flops, _ in self.costs)

    @property
    def bytes(self) -> float:
        return sum(moved for _, moved in self.costs)

    def roofline_seconds(self, peak: float = H200_FLOPS, bandwidth: float = H200_BYTES) -> float:
        return sum(max(flops / peak, moved / bandwidth) for flops, moved in self.costs)


def _flops(func, args, kwargs, out) -> float:
    """FLOPs by PyTorch's formulas; an in-place product (``addmm_``, ``baddbmm_``) costs as its out-of-place one."""
    from torch.utils.flop_counter import flop_registry

    packet = func.overloadpacket
    formula = flop_registry.get(packet)
    if formula is None and packet.__name__.endswith('_'):
        formula = flop_registry.get(getattr(_aten, packet.__name__[:-1], None))
    return float(formula(*args, **kwargs, out_val=out)) if formula is not None else 0.0


def _bytes(args, kwargs, out) -> float:
    """What an operator reads (its tensor arguments) and writes (its outputs), in bytes."""
    tensors = _tensors((args, kwargs)) + _tensors(out)
    return float(sum(t.numel() * t.element_size() for t in tensors))


@dataclasses.dataclass
class StepKernels:
    """Kernels of one training step of a block, and its roofline figures at the measured shape."""

    kernels: int
    by_operator: dict[str, int]
    gflop: float
    gbyte: float
    roofline_ms: float


def training_step(block: nn.Module, batch: int, tokens: int, dim: int, bf16: bool = True,
                  device: str = 'cpu') -> Callable[[], None]:
    """One forward and backward of ``block`` on tokens ``(batch, tokens, dim)`` under (bf16) autocast, the
    gradient flowing to the tokens (as the task encoders need) and to the trainable parameters. Parameter
    gradients are returned, not accumulated, so every call does the same work."""
    x = torch.randn(batch, tokens, dim, device=device, requires_grad=True)
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        grad = torch.randn(block(x).shape, device=device)
    trainable = [p for p in block.parameters() if p.requires_grad]

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out = block(x)
        torch.autograd.grad(out, [x] + trainable, grad, allow_unused=True)

    return step


def eager_step_kernels(block: nn.Module, batch: int, tokens: int, dim: int, bf16: bool = True) -> StepKernels:
    """:class:`StepKernels` of ``block``'s eager training step at ``(batch, tokens, dim)``, run on fake tensors
    (nothing is computed: the paper shape costs nothing on the CPU)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        step = training_step(block, batch, tokens, dim, bf16)
        with KernelCounter() as counter:
            step()
    return StepKernels(counter.count, counter.by_operator, counter.flops / 1e9, counter.bytes / 1e9,
                       counter.roofline_seconds() * 1e3)


def compiled_step_kernels(block: nn.Module, batch: int = 2, tokens: int = 16, dim: Optional[int] = None,
                          bf16: bool = True) -> int:
    """Kernels of one training step of ``torch.compile(block)`` (compiled here on the CPU, at a small shape:
    the kernel count does not depend on it). Raises when compiling is not possible on this machine."""
    import torch._inductor.config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    compiled = copy.deepcopy(block)
    compiled.compile(dynamic=True)
    dim = dim or _width(block)
    step = training_step(compiled, batch, tokens, dim, bf16)
    previous = inductor_config.cpp.enable_kernel_profile
    inductor_config.cpp.enable_kernel_profile = True          # generated CPU kernels appear in the profiler
    try:
        step()
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
    finally:
        inductor_config.cpp.enable_kernel_profile = previous
    return profiled_kernels(prof.events())


def _generated(event) -> bool:
    return 'cpp_fused' in event.name or 'triton_' in event.name


def profiled_kernels(events) -> int:
    """Generated kernels plus the outermost ATen calls that do work (library kernels such as matmuls)."""
    count = 0
    for event in events:
        if _generated(event):
            count += 1
            continue
        if not event.name.startswith('aten::') or event.name in PROFILER_KERNEL_FREE:
            continue
        parent = event.cpu_parent
        while parent is not None and not (parent.name.startswith('aten::') or _generated(parent)):
            parent = parent.cpu_parent
        if parent is None:
            count += 1
    return count


def _width(block: nn.Module) -> int:
    return next(p.shape[-1] for name, p in block.named_parameters() if name.endswith('norm1.weight'))


PHASES = ('rank search', 'frozen ranks')
"""The two phases of UniSTD's training, whose adapters run different code (rank gradients; live columns)."""


def config_blocks(cfg, task: str) -> dict[str, nn.Module]:
    """One ViT block of ``cfg``'s model (random weights): frozen alone, and with the config's RA-MoE and
    temporal module in each training phase (the search with the config's rank formulation, then frozen ranks)."""
    from ..methods.options import RankSearchOptions, options_of
    from ..modules.ra_moe import ra_moe_modules, round_and_freeze_ranks
    from ..tasks import resolve_tasks
    from ..engine.config import build_model

    spec = resolve_tasks([task])

    def block(**overrides) -> nn.Module:
        options = dict(cfg['model'])
        options['backbone_kwargs'] = {**dict(options.get('backbone_kwargs') or {}), 'depth': 1}
        model = build_model({**dict(cfg), 'model': {**options, **overrides}}, tasks=spec, load_pretrained=False)
        return model.backbone.blocks[0].train()

    search = options_of(RankSearchOptions, cfg.get('rank_search'), 'rank_search')
    blocks = {'frozen block': block(lora=False, temporal=False)}
    searching = block()
    for adapter in ra_moe_modules(searching):
        if not adapter.frozen:
            adapter.rank_gradient = search.rank_gradient
    blocks[f'+ RA-MoE + temporal, {PHASES[0]} ({search.formulation})'] = searching
    frozen = copy.deepcopy(searching)
    round_and_freeze_ranks(frozen)
    blocks[f'+ RA-MoE + temporal, {PHASES[1]}'] = frozen
    return blocks


def kernel_report(cfg, task: str, batch_size: int = 16, compile_blocks: bool = True) -> tuple[list[dict], dict]:
    """Rows per block variant (kernels eager and compiled, GFLOP, GB, roofline ms at ``batch_size`` and
    ``task``'s token grid) and the summary ``{frozen, full, full_compiled, roofline_ratio}``: ``full`` is
    the adapted block's larger count over the two training phases, ``roofline_ratio`` its roofline over
    the frozen block's; ``full_compiled`` is ``None`` where compiling fails on this machine."""
    from ..tasks import resolve_tasks

    grid_h, grid_w = resolve_tasks([task])[0].token_grid
    rows = []
    for label, block in config_blocks(cfg, task).items():
        dim = _width(block)
        eager = eager_step_kernels(block, batch_size, grid_h * grid_w, dim)
        row = {'variant': label, 'kernels': eager.kernels, 'gflop': eager.gflop, 'gbyte': eager.gbyte,
               'roofline_ms': eager.roofline_ms, 'compiled': None, 'by_operator': eager.by_operator}
        if compile_blocks:
            try:
                row['compiled'] = compiled_step_kernels(block, dim=dim)
            except Exception as error:                   # no compiler on this machine: say so, keep the rest
                row['compiled'] = None
                row['compile_error'] = f'{type(error).__name__}: {str(error).splitlines()[0][:200]}'
        rows.append(row)
    frozen, adapted = rows[0], rows[1:]
    worst = max(adapted, key=lambda r: r['kernels'])
    compiled = [r['compiled'] for r in adapted]
    summary = {'frozen': frozen['kernels'], 'full': worst['kernels'],
               'full_compiled': max(compiled) if all(c is not None for c in compiled) else None,
               'roofline_ratio': max(r['roofline_ms'] for r in adapted) / frozen['roofline_ms']}
    summary_frozen_compiled = frozen['compiled']
    for row in rows:
        row['vs_frozen'] = row['kernels'] / frozen['kernels']
        row['roofline_vs_frozen'] = row['roofline_ms'] / frozen['roofline_ms']
        if row['compiled'] is not None and summary_frozen_compiled:
            row['compiled_vs_frozen'] = row['compiled'] / summary_frozen_compiled
    return rows, summary
