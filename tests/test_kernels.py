"""Kernel counts and roofline figures of a training step (benchmarks/kernels.py, tools/benchmark.py kernels)."""
import json
import subprocess
import sys

import pytest
import torch

from openstl_unistd.benchmarks.kernels import (H200_BYTES, H200_FLOPS, KernelCounter, compiled_step_kernels,
                                               eager_step_kernels, kernel_report, training_step)
from openstl_unistd.modules.lora_injection import RAMoELinear
from openstl_unistd.modules.ra_moe import RAMoELoRA
from openstl_unistd.engine.config import load_config

from . import reference_ra_moe as reference
from .test_benchmark import ROOT


def test_counter_sees_kernels_not_views_and_prices_them_on_the_roofline():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    with KernelCounter() as counter:
        product = a @ b                       # one kernel
        _ = product.t().reshape(-1)[:5]       # views (the reshape of a transpose copies: one kernel)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            torch.nn.functional.linear(a, b.t())   # casts of both inputs, then the product
    assert counter.by_operator == {'mm': 2, 'clone': 1, '_to_copy': 2}
    flops, moved = counter.costs[0]
    assert flops == 2 * 64 * 32 * 16 and moved == 4 * (64 * 32 + 32 * 16 + 64 * 16)
    with KernelCounter() as in_place:
        product.addmm_(a, b)
    assert in_place.costs[0][0] == flops                  # an in-place product costs as the out-of-place one
    assert counter.roofline_seconds() == pytest.approx(sum(max(f / H200_FLOPS, m / H200_BYTES)
                                                           for f, m in counter.costs))


def adapted_linear(fused: bool):
    torch.manual_seed(0)
    base = torch.nn.Linear(48, 3 * 32).requires_grad_(False)          # the frozen qkv of a ViT block
    layer = RAMoELinear(base, RAMoELoRA(48, 32, 6, groups=3, max_rank=8)).train()
    if fused:
        return layer

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return reference.wrapped_linear(self.layer, x)

    return Reference()


@pytest.mark.parametrize('rank_gradient', ['eq9', 'marginal_gain'])
def test_the_fused_adapter_launches_far_fewer_kernels_than_the_autograd_one(rank_gradient):
    counts = {}
    for fused in (True, False):
        module = adapted_linear(fused)
        for m in module.modules():
            if isinstance(m, RAMoELoRA):
                m.rank_gradient = rank_gradient
        counts[fused] = eager_step_kernels(module, 2, 10, 48).kernels
    assert counts[True] <= 0.75 * counts[False], counts


def test_kernel_report_of_the_tiny_config():
    rows, summary = kernel_report(load_config(ROOT / 'configs/unistd/tiny_test.py'), 'human', batch_size=2,
                                  compile_blocks=False)
    assert [r['variant'] for r in rows] == ['frozen block', '+ RA-MoE + temporal, rank search (marginal_gain)',
                                            '+ RA-MoE + temporal, frozen ranks']
    assert summary['frozen'] == rows[0]['kernels'] < summary['full'] == max(r['kernels'] for r in rows[1:])
    assert summary['full_compiled'] is None
    assert summary['roofline_ratio'] > 1 and rows[1]['gflop'] > rows[0]['gflop'] > 0


def test_compiling_a_block_cuts_its_kernels():
    import timm

    torch._dynamo.reset()
    block = timm.create_model('vit_tiny_patch16_224', depth=1, num_classes=0).blocks[0].requires_grad_(False)
    eager = eager_step_kernels(block, 2, 16, 192).kernels
    assert compiled_step_kernels(block, dim=192) < eager


def test_training_step_returns_gradients_instead_of_accumulating_them():
    block = torch.nn.Linear(8, 8)
    step = training_step(block, 2, 3, 8, bf16=False)
    step()
    assert block.weight.grad is None


def test_benchmark_kernels_json_is_only_the_summary():
    result = subprocess.run([sys.executable, str(ROOT / 'tools/benchmark.py'), 'kernels', '-c',
                             str(ROOT / 'configs/unistd/tiny_test.py'), '--task', 'taxibj', '--batch-size', '2',
                             '--no-compile', '--json'], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert list(summary) == ['frozen', 'full', 'full_compiled', 'roofline_ratio']
    assert isinstance(summary['frozen'], int) and summary['full'] > summary['frozen']
