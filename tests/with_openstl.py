"""What the tests that need a real OpenSTL share: the mark that selects them, OpenSTL's runs and their metric lines.

``make test`` leaves these tests out (``-m "not openstl"``); ``make test-openstl OPENSTL_SRC=...`` runs
them in an environment with OpenSTL installed from that source, where ``OPENSTL_REQUIRED=1`` makes a
missing OpenSTL a failure and any skipped test fail the session (tests/conftest.py).
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

OPENSTL = importlib.util.find_spec('openstl') is not None and importlib.util.find_spec('openstl.api') is not None
REQUIRED = os.environ.get('OPENSTL_REQUIRED') == '1'
OPENSTL_MARKS = [
    pytest.mark.openstl,
    pytest.mark.skipif(not OPENSTL and not REQUIRED, reason='OpenSTL is not installed: run make test-openstl '
                       'OPENSTL_SRC=<an OpenSTL clone or source .tar.gz> (README, "Tests with a real OpenSTL")'),
]
"""The marks of a test that needs OpenSTL (a module's ``pytestmark``)."""


def needs_openstl(test):
    """Decorator: :data:`OPENSTL_MARKS` on one test."""
    for mark in OPENSTL_MARKS:
        test = mark(test)
    return test


TINY_UNISTD = ("backbone = 'vit_tiny_patch16_224'\npretrained = False\nbackbone_kwargs = dict(depth=1)\n"
               "hidden_channels = 8\nrank_search = dict(epochs=1)\nlr = 1e-3\n")
"""The model and method lines of a small UniSTD OpenSTL config (random backbone: nothing to download)."""

DEMO_DATASETS = ("datasets = dict(demo_digits=dict(num_samples=8), demo_advection=dict(num_samples=8), "
                 "demo_traffic=dict(num_samples=8))\n")


def run_launcher(cwd: Path, *arguments: str, script: str = 'train', timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m openstl_unistd.openstl_train`` (OpenSTL's own tools/train.py or test.py, plug-in registered)
    on the CPU, one loader worker, results under ``cwd/work``."""
    command = [sys.executable, '-m', 'openstl_unistd.openstl_train', '--openstl-script', script, '--num_workers', '1',
               '--res_dir', str(cwd / 'work'), '--device', 'cpu', *arguments]
    environment = dict(os.environ, HF_HUB_OFFLINE='1')
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=environment)


def succeeded(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and 'Traceback' not in result.stderr


LINE = re.compile(r' - (?:(?P<task>\w+): )?(?P<scores>mse:.*)$')


def metric_lines(log: str) -> dict:
    """The metric lines of an OpenSTL log: ``{task or None: {name: value}}``, names in the line's order."""
    lines = {}
    for text in log.splitlines():
        match = LINE.search(text)
        if match:
            pairs = (item.split(':', 1) for item in match['scores'].split(', '))
            lines[match['task']] = {name: float(value) for name, value in pairs}
    return lines


def log_of(folder: Path, prefix: str = 'train') -> str:
    logs = sorted(folder.glob(f'{prefix}_*.log'))
    assert len(logs) == 1, f'expected one {prefix}_*.log in {folder}, found {[p.name for p in logs]}'
    return logs[0].read_text()


def assert_line_is_openstls_metric(scores: dict, saved: Path) -> None:
    """``scores`` (a metric line) equal OpenSTL's ``metric()`` on the arrays saved beside it: the same
    names in the same order, the same values (float32 sums against float64 ones: 1e-5 relative)."""
    import openstl_unistd
    from openstl.core.metrics import metric

    openstl_unistd.register()  # OpenSTL's SSIM call, made to run under today's scikit-image
    preds, trues = np.load(saved / 'preds.npy'), np.load(saved / 'trues.npy')
    expected, _ = metric(preds, trues, metrics=list(scores))
    assert list(scores) == list(expected), (list(scores), list(expected))
    for name, value in expected.items():
        assert scores[name] == pytest.approx(float(value), rel=1e-5, abs=1e-6), name
