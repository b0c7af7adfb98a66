"""tools/benchmark.py on the CPU with tiny configs: the tables' figures with the clock fixed (exact values, not
timings), and the suite's budget."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables(output: str) -> list[list[list[str]]]:
    """The markdown tables of ``output`` as rows of cells (header first, separator dropped)."""
    found, current = [], []
    for line in output.splitlines():
        if line.startswith('|'):
            if not line.startswith('|---'):
                current.append([cell.strip() for cell in line.strip('|').split('|')])
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def run(*arguments) -> str:
    result = subprocess.run([sys.executable, str(ROOT / 'tools/benchmark.py'), *arguments, '--device', 'cpu'],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith('device: cpu') and 'command: python tools/benchmark.py' in result.stdout
    return result.stdout


class FixedClock:
    """Stands in for :func:`speed.median_seconds`: runs the step once (so the real code path runs) and
    returns the next of ``seconds``, so that every figure of a table is known exactly."""

    def __init__(self, *seconds: float):
        self.seconds = list(seconds)

    def __call__(self, step, device, warmup, repeats):
        step()
        return self.seconds.pop(0)


def run_here(capsys, *arguments) -> str:
    """``tools/benchmark.py arguments --device cpu`` in this process (so that its clock can be fixed)."""
    from .tools import tool

    argv = [*arguments, '--device', 'cpu']
    assert tool('benchmark').main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith('device: cpu') and f"command: python tools/benchmark.py {' '.join(argv)}\n" in out
    return out


def test_train_table_figures_follow_from_the_step_time_and_the_counted_flops(monkeypatch, capsys):
    """Break caught: ``samples_per_s = batch_size * seconds`` (or TFLOP/s, MFU or the ratio to the first
    model computed from another figure) in ``speed.measure``/``compare_models``."""
    from openstl_unistd.benchmarks import speed
    from openstl_unistd.engine.analysis import build_structure, config_with_model
    from openstl_unistd.engine.config import load_config

    # the device peak (a 1024² matmul on the CPU), then UniSTD on taxibj and enso, then TAU on both
    monkeypatch.setattr(speed, 'median_seconds', FixedClock(0.5, 0.2, 0.4, 0.3, 0.8))
    monkeypatch.setattr(speed, 'process_peak_mib', lambda: 1234.0)
    tiny, tau = str(ROOT / 'configs/unistd/tiny_test.py'), str(ROOT / 'configs/baselines/demo_tau.py')
    out = run_here(capsys, 'train', '-c', tiny, '--cfg-options', 'tasks=[taxibj,enso]', '--compare', tau,
                   '--batch-size', '2', '--warmup', '1', '--repeats', '2')
    (table,) = tables(out)
    assert table[0] == ['task', 'model', 'step ms', 'samples/s', 'peak MiB (CUDA alloc. / CPU RSS)', 'TFLOP/step',
                        'TFLOP/s', 'MFU', 'time vs first']
    cfg = load_config(tiny, {'tasks': ['taxibj', 'enso']})
    models = {'UniSTD': build_structure(cfg), 'demo_tau': build_structure(config_with_model(cfg, tau)[1])}
    peak = 2 * 1024 ** 3 / 0.5
    expected = []
    for (model, task), seconds, first in zip([(m, t) for m in models for t in ('taxibj', 'enso')], (0.2, 0.4, 0.3, 0.8),
                                             (0.2, 0.4, 0.2, 0.4)):
        flops = speed.step_flops(models[model], task, 2, train=True)
        expected.append([task, model, f'{seconds * 1e3:.1f}', f'{2 / seconds:.1f}', '1234', f'{flops / 1e12:.4g}',
                         f'{flops / seconds / 1e12:.4g}', f'{flops / seconds / peak:.1%}', f'{seconds / first:.2f}'])
    assert table[1:] == expected
    assert [row[-1] for row in table[1:]] == ['1.00', '1.00', '1.50', '2.00']


def test_infer_table_times_an_inference_step(monkeypatch, capsys):
    """Break caught: ``infer`` measuring a training step (``train=True`` passed on by ``step_report``):
    the FLOPs of a step would then include the backward."""
    from openstl_unistd.benchmarks import speed
    from openstl_unistd.engine.analysis import build_structure
    from openstl_unistd.engine.config import load_config

    monkeypatch.setattr(speed, 'median_seconds', FixedClock(0.5, 0.25))
    tiny = str(ROOT / 'configs/unistd/tiny_test.py')
    (table,) = tables(run_here(capsys, 'infer', '-c', tiny, '--cfg-options', 'tasks=[enso]', '--batch-size', '2'))
    model = build_structure(load_config(tiny, {'tasks': ['enso']}))
    forward = speed.step_flops(model, 'enso', 2, train=False)
    assert forward < speed.step_flops(model, 'enso', 2, train=True)
    assert [row[:4] + row[5:7] for row in table[1:]] == [
        ['enso', 'UniSTD', '250.0', '8.0', f'{forward / 1e12:.4g}', f'{forward / 0.25 / 1e12:.4g}']]


def test_adapter_table_compares_the_three_backbones_against_the_frozen_one(monkeypatch, capsys):
    """Break caught: the overhead taken against the previous backbone instead of the frozen blocks alone
    (``base = seconds`` in ``adapters_report``), or a variant built without its overrides."""
    from openstl_unistd.benchmarks import speed
    from openstl_unistd.modules.ra_moe import RAMoELoRA

    seen = []

    def backbone_step_seconds(model, tokens, batch_size, *args):
        lora = any(isinstance(m, RAMoELoRA) for m in model.backbone.modules())
        temporal = any(getattr(block, 'temporal', None) is not None for block in model.backbone.blocks)
        seen.append((tokens, batch_size, lora, temporal))
        return {(False, False): 0.1, (True, False): 0.12, (True, True): 0.15}[lora, temporal]

    monkeypatch.setattr(speed, 'backbone_step_seconds', backbone_step_seconds)
    (table,) = tables(run_here(capsys, 'adapters', '-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--tasks',
                               'taxibj', 'kth', '--batch-size', '2'))
    tokens = {'taxibj': (32 // 4) * (32 // 4), 'kth': (128 // 8) * (128 // 8)}   # 2 and 3 halvings
    assert seen == [(tokens[t], 2, lora, temporal) for t in ('taxibj', 'kth')
                    for lora, temporal in ((False, False), (True, False), (True, True))]
    assert table[1:] == [[task, str(tokens[task]), variant, ms, overhead] for task in ('taxibj', 'kth')
                         for variant, ms, overhead in (('frozen ViT blocks alone', '100.0', '+0.0%'),
                                                       ('+ RA-MoE', '120.0', '+20.0%'),
                                                       ('+ RA-MoE + temporal', '150.0', '+50.0%'))]


def test_ramoe_table_compares_every_computation_with_the_stacked_one(monkeypatch, capsys):
    """Break caught: the ratio inverted (``stacked / ms``) in ``ramoe_report``, or the adapters timed on
    another input shape than ``--batch-size``/``--tokens``."""
    from openstl_unistd.benchmarks import speed

    shapes = []
    real = speed.ra_moe_variants

    def variants():
        modules = real()
        for module in modules.values():
            module.register_forward_pre_hook(lambda _, inputs: shapes.append(tuple(inputs[0].shape)))
        return modules

    monkeypatch.setattr(speed, 'ra_moe_variants', variants)
    monkeypatch.setattr(speed, 'median_seconds', FixedClock(0.004, 0.0005, 0.0004, 0.0002, 0.00025))
    (table,) = tables(run_here(capsys, 'ramoe', '--batch-size', '1', '--tokens', '16'))
    assert table[1:] == [['per-expert loop', '4.000', '8.00'], ['stacked', '0.500', '1.00'],
                         ['stacked, frozen ranks', '0.400', '0.80'], ['base qkv Linear alone', '0.200', '0.40'],
                         ['base qkv + adapter (one node)', '0.250', '0.50']]
    assert set(shapes) == {(1, 16, 768)}


def test_eval_table_gives_the_rate_and_the_time_of_a_test_set(monkeypatch, capsys):
    """Break caught: a test set's minutes from the frames of one update for SEVIR (its 12 144 × 12 test
    frames ignored), or the rate computed as seconds per frame."""
    from openstl_unistd.benchmarks import speed
    from openstl_unistd.tasks import PAPER_TASKS

    monkeypatch.setattr(speed, 'median_seconds', FixedClock(0.5, 0.25))
    monkeypatch.setattr(speed, 'reference_ssim_frames_per_second', lambda frame: 3.0)
    (table,) = tables(run_here(capsys, 'eval', '--tasks', 'taxibj', 'sevir', '--frames', '2', '--repeats', '1'))
    assert table[0] == ['task', 'metrics', 'frames/s', 'skimage SSIM frames/s', 'test frames',
                        'minutes for the test set']
    sevir = ', '.join(sorted({*PAPER_TASKS['sevir'].metrics, 'psnr', 'ssim'}))
    assert 'csi' in sevir
    assert table[1:] == [['taxibj', 'mae, mse, psnr, rmse, ssim', '4', '3', '2', f'{2 / 4 / 60:.3g}'],
                         ['sevir', sevir, '8', '3', '145728', f'{145728 / 8 / 60:.3g}']]


def test_ddp_table_keeps_the_least_disturbed_round_of_each_measurement(monkeypatch, capsys):
    """Break caught: the mean or the last round kept instead of the minimum, or the detection's cost
    computed against the multi-task step (``ddp_report``)."""
    from openstl_unistd.benchmarks import ddp

    calls = []

    def ddp_step_seconds(cfg, tasks, find_unused, world_size, batch_size, warmup, repeats, device_type):
        calls.append((tuple(tasks), find_unused, world_size, batch_size, device_type))
        rounds = {(1, False): (0.3, 0.2, 0.25), (1, True): (0.3, 0.25, 0.5), (2, True): (0.4, 0.6, 0.35)}
        return rounds[len(tasks), find_unused][sum(c[:2] == calls[-1][:2] for c in calls) - 1]

    monkeypatch.setattr(ddp, 'ddp_step_seconds', ddp_step_seconds)
    (table,) = tables(run_here(capsys, 'ddp', '-c', str(ROOT / 'configs/unistd/demo.py'), '--tasks', 'demo_digits',
                               'demo_advection', '--batch-size', '2', '--rounds', '3', '--world-size', '2'))
    assert calls == 3 * [(('demo_digits',), False, 2, 2, 'cpu'), (('demo_digits',), True, 2, 2, 'cpu'),
                         (('demo_digits', 'demo_advection'), True, 2, 2, 'cpu')]
    assert table[1:] == [['one task (demo_digits)', 'no', '200.0', '+0.0%'],
                         ['one task (demo_digits)', 'yes', '250.0', '+25.0%'],
                         ['2 tasks, one per step', 'yes', '350.0', '-']]


def test_memory_table_estimates_every_task_with_and_without_checkpointing_and_measures_one():
    out = run('memory', '-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--cfg-options', 'tasks=[kth,enso]',
              'model.checkpointing=[kth]', '--batch-size', '2', '--measure', 'kth')
    (table,) = tables(out)
    assert table[0][:2] == ['task', 'peak, no checkpointing'] and table[0][-2:] == ['measured (cpu)',
                                                                                      'estimate / measured']
    rows = {row[0]: row for row in table[1:]}
    assert list(rows) == ['kth', 'enso']
    column = {title: i for i, title in enumerate(table[0])}
    kth = rows['kth']
    assert float(kth[column["peak, 'ends'"]]) < float(kth[column['peak, no checkpointing']])
    assert kth[column['config checkpoints']] == 'ends' and rows['enso'][column['config checkpoints']] == 'no'
    assert kth[column["config's peak"]] == kth[column["peak, 'ends'"]]
    assert 0.8 < float(kth[column['estimate / measured']]) < 1.1 and rows['enso'][-1] == '-'


def test_grouped_convolution_backward_is_counted_once_per_gradient():
    import torch
    from torch import nn

    from openstl_unistd.benchmarks.speed import step_flops
    from openstl_unistd.models.base import MultiTaskModel

    class Depthwise(MultiTaskModel):
        def __init__(self):
            super().__init__(['taxibj'])
            self.first = nn.Conv2d(2, 64, 3, padding=1)
            self.depthwise = nn.Conv2d(64, 64, 7, padding=3, groups=64)
            self.last = nn.Conv2d(64, 2, 1)

        def forward(self, x, task):
            b, t = x.shape[:2]
            return self.last(self.depthwise(self.first(x.flatten(0, 1)))).view(b, t, 2, 32, 32)

    with torch.device('meta'):
        model = Depthwise()
    frames = 2 * 4
    first = 2 * frames * 32 * 32 * 64 * 2 * 9
    depthwise = 2 * frames * 32 * 32 * 64 * 1 * 49
    last = 2 * frames * 32 * 32 * 2 * 64
    assert step_flops(model, 'taxibj', 2, train=False) == first + depthwise + last
    # backward: every layer's weight gradient, and input gradients for all but the first layer
    assert step_flops(model, 'taxibj', 2, train=True) == 2 * first + 3 * depthwise + 3 * last


def test_suite_quick_keeps_to_its_budget_and_says_what_it_skipped(tmp_path):
    out = tmp_path / 'suite.md'
    result = subprocess.run([sys.executable, str(ROOT / 'tools/benchmark.py'), 'suite', '--quick', '--device', 'cpu',
                             '--budget', '60', '--out', str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    document = out.read_text()
    from openstl_unistd.benchmarks.suite import SUITE
    titles = [title for title, *_ in SUITE]
    assert [line[4:line.rindex(' (')] for line in document.splitlines() if line.startswith('### ')] == titles
    compile_part = document[document.index('### ' + titles[-1]):]
    assert 'Skipped: it needs about 200 s' in compile_part and '--compile' in compile_part
    first_part = document[document.index('### ' + titles[0]):document.index('### ' + titles[1])]
    assert ('| block | kernels eager |' in first_part and 'command: python tools/benchmark.py kernels' in first_part
            or 'Stopped: the time budget ended' in first_part)     # a very slow machine may stop it
    for part in ('Adapter overhead on the frozen blocks, compiled', 'Training step at batch 16, compiled'):
        assert 'Skipped: it needs about 200 s' in document[document.index('### ' + part):]
    seconds = int(document.splitlines()[-1].split()[2])
    assert seconds <= 70 and document.splitlines()[-1].endswith('of a 60 s budget.')


def test_suite_stops_a_part_at_the_budget_and_keeps_the_document(tmp_path):
    import time as clock

    import lightning  # noqa: F401  (imported by the suite: not part of the timing)
    import timm  # noqa: F401
    import torch

    from openstl_unistd.benchmarks.suite import run_suite

    ran = []

    def fake_main(argv):
        ran.append(argv[0])
        print(f'| {argv[0]} | table |')
        if argv[0] == 'slow':
            while True:
                clock.sleep(0.05)

    out = tmp_path / 'suite.md'
    start = clock.perf_counter()
    returned = run_suite(fake_main, torch.device('cpu'), 1.5, 'python tools/benchmark.py suite', out=str(out),
                         parts=[('First', ['fast'], 0.1), ('Second', ['slow'], 0.1), ('Third', ['later'], 0.1)])
    assert clock.perf_counter() - start < 10 and ran == ['fast', 'slow']
    document = out.read_text()
    assert returned == document
    assert '| fast | table |' in document and '| slow | table |' in document
    assert 'Stopped: the time budget ended during this part.' in document
    assert 'Skipped: it needs about 0.1 s, and 0 s of the 1.5 s budget were left' in document


def test_a_model_out_of_memory_is_a_row_and_the_others_are_measured(monkeypatch):
    import torch

    from openstl_unistd.benchmarks import speed
    from openstl_unistd.engine.config import load_config

    real = speed.measure

    def measure(model, meta, task, *args, **kwargs):
        if type(model).__name__ == 'UniSTD' and task == 'taxibj':
            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')
        return real(model, meta, task, *args, **kwargs)

    monkeypatch.setattr(speed, 'measure', measure)
    cfg = load_config(ROOT / 'configs/unistd/tiny_test.py', {'tasks': ['taxibj', 'enso']})
    rows = speed.compare_models(cfg, [str(ROOT / 'configs/baselines/demo_tau.py')], ['taxibj', 'enso'], 1,
                                torch.device('cpu'), True, False, True, False, 0, 1)
    assert [(r['task'], r['model'], r['step_ms']) for r in rows][0] == ('taxibj', 'UniSTD', 'out of memory')
    assert all(isinstance(r['step_ms'], float) for r in rows[1:]) and rows[2]['vs_first'] == '-'
    assert isinstance(rows[3]['vs_first'], float)
    from openstl_unistd.benchmarks.markdown import table
    text = table(rows, [('task', 'task', ''), ('model', 'model', ''), ('step_ms', 'step ms', '.1f'),
                        ('vs_first', 'time vs first', '.2f')])
    assert '| taxibj | UniSTD | out of memory | - |' in text
