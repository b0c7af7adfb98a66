"""tools/benchmark.py runs on the CPU with a tiny config (a smoke test of its tables, not a timing)."""
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


def numbers(row: list[str], first: int) -> list[float]:
    return [float(cell.rstrip('%')) for cell in row[first:]]


def test_train_table_compares_models_with_positive_figures():
    out = run('train', '-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--cfg-options', 'tasks=[taxibj,enso]',
              '--compare', str(ROOT / 'configs/baselines/demo_tau.py'), '--batch-size', '2', '--warmup', '1',
              '--repeats', '2')
    (table,) = tables(out)
    assert table[0] == ['task', 'model', 'step ms', 'samples/s', 'peak MiB (CUDA alloc. / CPU RSS)', 'TFLOP/step',
                        'TFLOP/s', 'MFU', 'time vs first']
    assert [row[:2] for row in table[1:]] == [['taxibj', 'UniSTD'], ['enso', 'UniSTD'], ['taxibj', 'demo_tau'],
                                             ['enso', 'demo_tau']]
    for row in table[1:]:
        assert all(value > 0 for value in numbers(row, 2)), row
    assert all(float(row[-1]) == 1.0 for row in table[1:3])


def test_infer_table_has_positive_figures():
    (table,) = tables(run('infer', '-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--cfg-options', 'tasks=[enso]',
                          '--batch-size', '2', '--warmup', '1', '--repeats', '1'))
    assert [row[:2] for row in table[1:]] == [['enso', 'UniSTD']] and all(v > 0 for v in numbers(table[1], 2))


def test_adapter_ramoe_and_eval_tables():
    (adapters,) = tables(run('adapters', '-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--tasks', 'taxibj',
                             '--batch-size', '2', '--warmup', '1', '--repeats', '1'))
    assert [row[2] for row in adapters[1:]] == ['frozen ViT blocks alone', '+ RA-MoE', '+ RA-MoE + temporal']
    assert float(adapters[1][3]) > 0 and adapters[1][4] == '+0.0%'
    (ramoe,) = tables(run('ramoe', '--batch-size', '1', '--tokens', '64', '--warmup', '1', '--repeats', '1'))
    assert [row[0] for row in ramoe[1:]][:2] == ['per-expert loop', 'stacked'] and all(float(r[1]) > 0 for r in ramoe[1:])
    (evaluation,) = tables(run('eval', '--tasks', 'taxibj', '--frames', '8', '--repeats', '1'))
    assert evaluation[0][0] == 'task' and all(value > 0 for value in numbers(evaluation[1], 2))


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
    from .tools import tool
    titles = [title for title, *_ in tool('benchmark').SUITE]
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


def test_suite_stops_a_part_at_the_budget_and_keeps_the_document(tmp_path, monkeypatch, capsys):
    import argparse
    import time as clock

    import lightning  # noqa: F401  (imported by the suite: not part of the timing)
    import timm  # noqa: F401

    from .tools import tool

    benchmark = tool('benchmark')
    ran = []

    def fake_main(argv):
        ran.append(argv[0])
        print(f'| {argv[0]} | table |')
        if argv[0] == 'slow':
            while True:
                clock.sleep(0.05)

    monkeypatch.setattr(benchmark, 'main', fake_main)
    monkeypatch.setattr(benchmark, 'SUITE', [('First', ['fast'], 0.1), ('Second', ['slow'], 0.1),
                                             ('Third', ['later'], 0.1)])
    out = tmp_path / 'suite.md'
    start = clock.perf_counter()
    benchmark.suite(argparse.Namespace(device='cpu', quick=False, budget=1.5, out=str(out)))
    assert clock.perf_counter() - start < 10 and ran == ['fast', 'slow']
    document = out.read_text()
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
    from .tools import tool
    text = tool('benchmark').table(rows, [('task', 'task', ''), ('model', 'model', ''), ('step_ms', 'step ms', '.1f'),
                                          ('vs_first', 'time vs first', '.2f')])
    assert '| taxibj | UniSTD | out of memory | - |' in text
