"""Training output fit for a log file: whole progress lines when stdout is a pipe."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from openstl_unistd.engine.progress import PlainProgress, _duration

ROOT = Path(__file__).resolve().parents[1]


def test_piped_training_prints_plain_progress_and_validation_lines(tmp_path):
    options = ['model.backbone_kwargs.depth=1', 'model.hidden_channels=4', 'tasks=[demo_traffic]',
               'data.datasets.demo_traffic.num_samples=24', 'data.batch_size=4', 'data.steps_per_epoch=4',
               'trainer.max_epochs=2', 'trainer.progress_every_n_steps=2', 'rank_search.epochs=1']
    result = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '-c', str(ROOT / 'configs/unistd/demo.py'),
                             '--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'data'), '--no-test',
                             '--cfg-options', *options], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    steps = [l for l in lines if l.startswith('step ')]
    assert [int(re.match(r'step (\d+)/8 \(epoch (\d)/2\)', l).group(1)) for l in steps] == [2, 4, 6, 8]
    assert all(re.search(r'loss demo_traffic \d\.\d+(e-\d+)?  \d+\.\d+ steps/s(  ETA \S+)?$', l) for l in steps)
    validation = [l for l in lines if l.startswith('validation after epoch')]
    assert len(validation) == 2 and all('val/loss' in l and '(demo_traffic ' in l for l in validation)
    assert '\r' not in result.stdout and '━' not in result.stdout  # no progress bar fragments


def test_durations_read_as_a_person_would_write_them():
    assert [_duration(s) for s in (5, 65, 3725)] == ['5s', '1m05s', '1h02m']
    with pytest.raises(ValueError, match='progress_every_n_steps must be a positive integer, got 0'):
        PlainProgress(0)
