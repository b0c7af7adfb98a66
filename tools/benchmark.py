"""Benchmarks (figures for docs/performance.md, never pass/fail tests).

    python tools/benchmark.py train -c configs/unistd/multi10.py --tasks sevir human --compare --bf16
    python tools/benchmark.py infer -c configs/unistd/multi10.py --tasks sevir --compare
    python tools/benchmark.py adapters -c configs/unistd/multi10.py --tasks sevir human
    python tools/benchmark.py memory -c configs/unistd/multi10.py --batch-size 16 --bf16   # peak per task, on the CPU
    python tools/benchmark.py ramoe [--tokens 576]
    python tools/benchmark.py kernels -c configs/unistd/multi10.py [--json]   # kernels per ViT block, roofline
    python tools/benchmark.py eval --tasks sevir
    python tools/benchmark.py data [--workers 0 2 4]
    python tools/benchmark.py ddp -c configs/unistd/demo.py --device cpu     # unused-parameter detection under DDP
    python tools/benchmark.py suite [--out performance-gpu.md] [--budget 450]   # the GPU measurements, one document

Every command prints a markdown table headed by the device, the versions and the command itself.
The measurements are in openstl_unistd/benchmarks/ (reports.py: what each command prints).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

from openstl_unistd.benchmarks import reports
from openstl_unistd.benchmarks.markdown import command_line
from openstl_unistd.benchmarks.speed import benchmark_device
from openstl_unistd.benchmarks.suite import run_suite
from openstl_unistd.engine.cli import run_tool
from openstl_unistd.engine.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest='command', required=True)

    def config(sub):
        sub.add_argument('-c', '--config', required=True)
        sub.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)

    def common(sub):
        sub.add_argument('--tasks', nargs='+', help="tasks to time (default: the config's)")
        sub.add_argument('--batch-size', type=int, default=16)
        sub.add_argument('--device', help="'cuda' or 'cpu' (default: cuda when available)")
        sub.add_argument('--bf16', action='store_true', help='bf16 autocast')
        sub.add_argument('--warmup', type=int, default=3)
        sub.add_argument('--repeats', type=int, default=10)

    for name in ('train', 'infer'):
        sub = commands.add_parser(name, help=f"{name} step of the config's model (and of baselines with --compare)")
        config(sub)
        common(sub)
        sub.add_argument('--compare', nargs='*', default=None, metavar='MODEL_CONFIG',
                         help='also time these model configs (default: the four baselines)')
        sub.add_argument('--no-sdpa', action='store_true', help='timm attention without scaled_dot_product_attention')
        sub.add_argument('--compile', action='store_true', help='torch.compile the models')
        sub.add_argument('--deadline', type=float, help=argparse.SUPPRESS)
    sub = commands.add_parser('adapters', help='backbone step with and without RA-MoE and temporal modules')
    config(sub)
    common(sub)
    sub.add_argument('--no-sdpa', action='store_true')
    sub.add_argument('--compile', action='store_true', help='compile the blocks as trainer.compile does')
    sub = commands.add_parser('kernels', help='kernels per ViT block in a training step, eager and compiled; roofline')
    config(sub)
    sub.add_argument('--task', help="the token grid of the roofline (default: the config's task with the most tokens)")
    sub.add_argument('--batch-size', type=int, default=16)
    sub.add_argument('--no-compile', action='store_true', help='skip the compiled counts')
    sub.add_argument('--json', action='store_true',
                     help='print only {"frozen", "full", "full_compiled", "roofline_ratio"} as JSON')
    sub = commands.add_parser('memory', help='estimated peak memory of a training step per task (fake tensors, '
                                             'on the CPU), with and without checkpointing')
    config(sub)
    common(sub)
    sub.add_argument('--measure', nargs='+', metavar='TASK', default=[],
                     help='also measure one real step of these tasks on --device (CUDA: max_memory_allocated)')
    sub = commands.add_parser('ramoe', help='RA-MoE adapter: per-expert loop vs stacked vs frozen ranks')
    common(sub)
    sub.add_argument('--tokens', type=int, default=576)
    sub = commands.add_parser('eval', help='metric throughput and the time of a whole test set')
    common(sub)
    sub.add_argument('--frames', type=int, default=48, help='frames per metric update')
    sub = commands.add_parser('data', help='samples per second of every paper loader on real-format fixtures')
    sub.add_argument('--tasks', nargs='+')
    sub.add_argument('--workers', nargs='+', type=int, default=[0, 2])
    sub.add_argument('--batch-size', type=int, default=16)
    sub.add_argument('--samples', type=int, default=256)
    sub = commands.add_parser('ddp', help='DDP step with and without unused-parameter detection')
    config(sub)
    common(sub)
    sub.add_argument('--world-size', type=int, default=2)
    sub.add_argument('--rounds', type=int, default=3, help='interleaved repetitions of the three measurements')
    sub = commands.add_parser('suite', help='every GPU measurement of docs/performance.md, one markdown document')
    sub.add_argument('--out', help='also write the document to this file')
    sub.add_argument('--device', help="'cuda' or 'cpu' (default: cuda when available)")
    sub.add_argument('--quick', action='store_true', help='toy sizes: check on the CPU that every part runs')
    sub.add_argument('--budget', type=float, default=450,
                     help='seconds for the whole suite: parts that would overrun are skipped (default 450)')
    return p


def report(args, command: str) -> str:
    """The markdown of ``args.command`` (every command but ``suite``)."""
    device = benchmark_device(getattr(args, 'device', None))
    cfg = load_config(args.config, args.cfg_options) if 'config' in args else None
    if args.command in ('train', 'infer'):
        compare = [] if args.compare is None else args.compare or [str(ROOT / path) for path in reports.BASELINES]
        return reports.step_report(cfg, compare, args.tasks, args.batch_size, device, args.command == 'train',
                                   args.bf16, not args.no_sdpa, args.compile, args.warmup, args.repeats, command,
                                   args.deadline)
    if args.command == 'adapters':
        return reports.adapters_report(cfg, args.tasks, args.batch_size, device, args.bf16, not args.no_sdpa,
                                       args.compile, args.warmup, args.repeats, command)
    if args.command == 'kernels':
        return reports.kernels_report(cfg, args.task, args.batch_size, not args.no_compile, args.json, command)
    if args.command == 'memory':
        return reports.memory_report(cfg, args.tasks, args.batch_size, device, args.bf16, args.measure, command)
    if args.command == 'ramoe':
        return reports.ramoe_report(args.batch_size, args.tokens, device, args.warmup, args.repeats, command)
    if args.command == 'eval':
        return reports.eval_report(args.tasks, args.frames, device, args.repeats, command)
    if args.command == 'data':
        return reports.data_report(args.tasks, args.workers, args.batch_size, args.samples, command)
    return reports.ddp_report(cfg.to_dict(), args.tasks, args.world_size, args.batch_size, device, args.rounds,
                              args.warmup, args.repeats, command)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    if args.command == 'suite':
        run_suite(main, benchmark_device(args.device), args.budget, command_line(argv), args.device, args.quick,
                  args.out)
    else:
        print(report(args, command_line(argv)))
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
