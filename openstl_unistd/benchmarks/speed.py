"""Step time, throughput, memory and FLOP utilization of models, measured side by side.

Everything is timed on the model alone (no Lightning, no data loading): random inputs of the task
shapes, ``warmup`` untimed steps, then the median of ``repeats`` timed steps (CUDA synchronized).
Model FLOPs of a step are counted with ``torch.utils.flop_counter`` on ``meta`` tensors (forward, and
backward for training, where frozen weights get no weight gradient), so "achieved TFLOP/s" is model
FLOPs over measured time; model-FLOPs utilization (MFU) divides it by the peak measured on the same
device with a large matmul of the same precision. Peak memory is CUDA's peak allocation during
the timed steps, or on the CPU the process's peak resident memory.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import statistics
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..modules.lora_injection import RAMoELinear
from ..modules.ra_moe import RAMoELoRA


OUT_OF_MEMORY = (getattr(torch, 'OutOfMemoryError', torch.cuda.OutOfMemoryError),)
"""What a device raises when a measurement does not fit in its memory."""


class OutOfTime(Exception):
    """Raised (e.g. by a timer signal) when a benchmark reaches its time budget."""


def free_memory(device: torch.device) -> None:
    """Give back what a failed or finished measurement held (after its references are gone)."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def benchmark_device(name: Optional[str] = None) -> torch.device:
    """``name`` (``'cuda'``, ``'cpu'``…), by default CUDA when available."""
    return torch.device(name or ('cuda' if torch.cuda.is_available() else 'cpu'))


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``step`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def process_peak_mib() -> float:
    """Peak resident memory of this process so far (the CPU stand-in for CUDA's peak allocation)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def measured_peak_flops(device: torch.device, bf16: bool, size: int = 4096, repeats: int = 10) -> float:
    """FLOP/s of an ``size × size`` matmul in the benchmark's precision: the device peak we compare with."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    if device.type == 'cpu':
        size = min(size, 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: torch.matmul(a, b), device, warmup=3, repeats=repeats)
    return 2 * size ** 3 / seconds


def set_fused_attention(model: nn.Module, enabled: bool) -> None:
    """Switch timm attention between ``scaled_dot_product_attention`` and the explicit softmax path."""
    for module in model.modules():
        if hasattr(module, 'fused_attn'):
            module.fused_attn = enabled


def convolution_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                               _output_padding, _groups, output_mask, out_shape, **kwargs) -> int:
    """FLOPs of a convolution's backward: one forward-sized convolution per gradient computed.

    PyTorch's own formula (torch 2.14) overcounts grouped convolutions by about the group count
    (66× for a 64-group depthwise 7×7 convolution), which would inflate TAU's and gSTA's training
    FLOPs (their large-kernel attention is depthwise); this one counts the grouped weight shape.
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def step_flops(model_on_meta: nn.Module, task: str, batch_size: int, train: bool) -> int:
    """FLOPs of one forward (and, for training, backward) step on ``meta`` tensors."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = model_on_meta.tasks[task]
    x = torch.empty(batch_size, *spec.input_shape, device='meta')
    mapping = {torch.ops.aten.convolution_backward: convolution_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        y = model_on_meta(x, task)
        if train:
            y.float().square().mean().backward()
    return counter.get_total_flops()


def measure(model: nn.Module, model_on_meta: nn.Module, task: str, batch_size: int, device: torch.device,
            train: bool = True, bf16: bool = False, compile_model: bool = False, warmup: int = 3,
            repeats: int = 10, peak_flops: Optional[float] = None) -> dict:
    """Median step time, samples/s, peak memory, achieved TFLOP/s and MFU of one task's step."""
    spec = model.tasks[task]
    x = torch.randn(batch_size, *spec.input_shape, device=device)
    y = torch.randn(batch_size, *spec.output_shape, device=device)
    if compile_model:
        compile_regions(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4) if train and trainable else None

    def step() -> None:
        if train:
            with autocast(device, bf16):
                loss = F.mse_loss(model(x, task).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad(), autocast(device, bf16):
                model(x, task)

    model.train(train)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median_seconds(step, device, warmup, repeats)
    memory = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else process_peak_mib()
    flops = step_flops(model_on_meta, task, batch_size, train)
    achieved = flops / seconds
    return {
        'step_ms': seconds * 1e3, 'samples_per_s': batch_size / seconds, 'peak_mem_mb': memory,
        'model_tflop': flops / 1e12, 'tflops': achieved / 1e12,
        'mfu': achieved / peak_flops if peak_flops else float('nan'),
    }


class NaiveRAMoE(nn.Module):
    """The RA-MoE adapter computed one expert at a time (the "before" of the stacked fast path)."""

    def __init__(self, adapter: RAMoELoRA) -> None:
        super().__init__()
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.adapter
        gates = a.routing_weights(x)
        mask = a.rank_mask()
        weight_a = a.lora_A.view(a.groups, a.num_experts, a.max_rank, a.in_features)
        weight_b = a.lora_B.view(a.groups, a.num_experts, a.max_rank, a.out_features)
        outputs = []
        for g in range(a.groups):
            out = 0
            for e in range(a.num_experts):
                hidden = (x @ weight_a[g, e].T) * mask[g, e]
                out = out + gates[:, g, e, None, None] * (hidden @ weight_b[g, e])
            outputs.append(out)
        return a.alpha * torch.cat(outputs, dim=-1)


def ra_moe_variants(dim: int = 768, experts: int = 6, groups: int = 3, rank: float = 4.5) -> dict[str, nn.Module]:
    """The Q/K/V adapter of a ViT-B block: per-expert loop, stacked, stacked after freezing; and the
    frozen ``qkv`` layer alone and with the (frozen-rank) adapter, the overhead that training pays."""
    torch.manual_seed(0)
    stacked = RAMoELoRA(dim, dim, experts, groups=groups, init_rank=rank)
    with torch.no_grad():
        stacked.lora_B.normal_(std=0.02)
        stacked.router.weight.normal_(std=0.02)
    frozen = copy.deepcopy(stacked)
    frozen.round_and_freeze()
    base = nn.Linear(dim, groups * dim)
    return {'per-expert loop': NaiveRAMoE(stacked), 'stacked': stacked, 'stacked, frozen ranks': frozen,
            'base qkv Linear alone': base, 'base qkv + adapter (one node)': RAMoELinear(base, frozen)}


def ra_moe_milliseconds(batch_size: int, tokens: int, device: torch.device, warmup: int,
                        repeats: int) -> dict[str, float]:
    """Median forward time (ms) of each of :func:`ra_moe_variants` on ``(batch_size, tokens, 768)``."""
    x = torch.randn(batch_size, tokens, 768, device=device)
    times = {}
    for label, module in ra_moe_variants().items():
        module = module.to(device)
        with torch.no_grad():
            times[label] = median_seconds(lambda: module(x), device, warmup, repeats) * 1e3
    return times


def compile_regions(model: nn.Module) -> None:
    """The training path's compilation (``trainer.compile``): the model's shared core region by region,
    or the whole model when it names no regions."""
    if not getattr(model, 'compile_regions', None) or not model.compile_regions():
        model.compile(dynamic=True)


def backbone_step_seconds(model: nn.Module, tokens: int, batch_size: int, device: torch.device, bf16: bool,
                          warmup: int, repeats: int, compile_blocks: bool = False) -> float:
    """Training step of ``model.backbone`` alone on random tokens ``(B, tokens, L)``: forward, backward
    to the tokens (as the task encoders need) and to any trainable backbone parameter; with
    ``compile_blocks`` its blocks are compiled as training compiles them (``trainer.compile``)."""
    backbone = model.backbone.to(device).train()
    if compile_blocks and not getattr(model, '_blocks_compiled', False):
        model.compile_regions()
        model._blocks_compiled = True
    x = torch.randn(batch_size, tokens, model.embed_dim, device=device, requires_grad=True)

    def step() -> None:
        with autocast(device, bf16):
            out = backbone(x)
        out.float().square().mean().backward()
        x.grad = None
        for parameter in backbone.parameters():
            parameter.grad = None

    return median_seconds(step, device, warmup, repeats)


def metric_frames_per_second(metrics: list[str], frame_shape: tuple[int, int, int], frames_per_batch: int,
                             device: torch.device, repeats: int = 5, mean: float = 0.0, std: float = 1.0) -> float:
    """Frames per second at which :class:`ForecastMetrics` scores predictions on ``device``."""
    from ..core.metrics import ForecastMetrics
    from ..core.scaling import Scaling

    metric = ForecastMetrics(metrics, Scaling.of(mean, std)).to(device)
    pred = torch.rand(1, frames_per_batch, *frame_shape, device=device)
    true = torch.rand(1, frames_per_batch, *frame_shape, device=device)
    seconds = median_seconds(lambda: metric.update(pred, true), device, warmup=1, repeats=repeats)
    return frames_per_batch / seconds


def reference_ssim_frames_per_second(frame_shape: tuple[int, int, int], frames: int = 4) -> float:
    """Frames per second of scikit-image's SSIM called frame by frame on the CPU (OpenSTL's way)."""
    import numpy as np
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    pred = rng.random((frames, *frame_shape))
    true = rng.random((frames, *frame_shape))
    start = time.perf_counter()
    for i in range(frames):
        structural_similarity(true[i], pred[i], data_range=1.0, channel_axis=0)
    return frames / (time.perf_counter() - start)


def compare_models(cfg, model_configs, tasks, batch_size: int, device: torch.device, train: bool, bf16: bool,
                   sdpa: bool, compile_model: bool, warmup: int, repeats: int,
                   deadline: Optional[float] = None) -> list[dict]:
    """:func:`measure` for ``cfg``'s model and each model config, every task; rows with a ratio to the first.

    A model or task that runs out of device memory gives a row noted ``out of memory`` (its memory is
    given back) and the others are measured; past ``deadline`` (``time.perf_counter()`` seconds) or on
    :class:`OutOfTime`, the rows left are noted ``not measured: time budget`` instead of being lost.
    """
    from ..engine.analysis import build_structure, config_with_model
    from ..engine.config import build_model

    named = [(cfg['model']['type'], cfg)] + [config_with_model(cfg, path) for path in model_configs]
    peak = measured_peak_flops(device, bf16)
    rows = []
    out_of_time = False
    for name, model_cfg in named:
        model = None
        for task in tasks:
            note = None
            if out_of_time or (deadline is not None and time.perf_counter() > deadline):
                out_of_time, note = True, 'not measured: time budget'
            else:
                try:
                    if model is None:
                        model = build_model(model_cfg, load_pretrained=False).to(device)
                        set_fused_attention(model, sdpa)
                    figures = measure(model, build_structure(model_cfg), task, batch_size, device, train, bf16,
                                      compile_model, warmup, repeats, peak)
                except OUT_OF_MEMORY:
                    note = 'out of memory'
                except OutOfTime:
                    out_of_time, note = True, 'stopped: time budget'
            if note:
                figures = {'step_ms': note}
                free_memory(device)
            rows.append({'task': task, 'model': name, **figures})
        del model
        free_memory(device)
    first = {row['task']: row['step_ms'] for row in rows if row['model'] == named[0][0]}
    for row in rows:
        measured = isinstance(row['step_ms'], float) and isinstance(first.get(row['task']), float)
        row['vs_first'] = row['step_ms'] / first[row['task']] if measured else '-'
    return rows
