"""A work dir is never reused silently, never shared by two live runs, and checked before any work."""
import os
import subprocess
import sys
import time

import pytest
import torch

from openstl_unistd.inference.checkpoint_io import AtomicCheckpointIO
from openstl_unistd.engine.work_dir import WorkDirLock, claim

from .tools import DEMO, ROOT, SMALL, run


def make_previous_run(work_dir):
    (work_dir / 'checkpoints').mkdir(parents=True)
    (work_dir / 'checkpoints' / 'best.ckpt').write_bytes(b'old run')
    (work_dir / 'logs').mkdir()
    (work_dir / 'logs' / 'metrics.csv').write_text('epoch,step\n0,0\n')
    (work_dir / 'results.json').write_text('{}')


def test_a_new_run_refuses_a_work_dir_holding_another_run(tmp_path, capsys):
    work_dir = tmp_path / 'work'
    make_previous_run(work_dir)
    status, err = run('train', '-c', DEMO, '--work-dir', work_dir, '--data-root', tmp_path / 'data', *SMALL,
                          capsys=capsys)
    assert status == 2 and 'Traceback' not in err
    assert f"work dir '{work_dir}' holds another run (checkpoints/best.ckpt" in err
    assert '--resume' in err and '--overwrite' in err
    assert (work_dir / 'checkpoints' / 'best.ckpt').read_bytes() == b'old run'     # untouched


def test_resume_keeps_and_overwrite_replaces_the_previous_run(tmp_path, capsys):
    work_dir = tmp_path / 'work'
    make_previous_run(work_dir)
    claim(work_dir, resume=True).release()
    assert (work_dir / 'checkpoints' / 'best.ckpt').is_file()
    claim(work_dir, overwrite=True).release()
    assert not any((work_dir / name).exists() for name in ('checkpoints', 'logs', 'results.json'))
    assert '--overwrite: removed the previous run' in capsys.readouterr().err
    status, err = run('train', '-c', DEMO, '--work-dir', work_dir, '--resume', '--overwrite', capsys=capsys)
    assert status == 2 and 'give one of them' in err


def test_a_second_run_stops_at_once_naming_the_first(tmp_path, capsys):
    work_dir = tmp_path / 'work'
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time\n'
                               'from openstl_unistd.engine.work_dir import WorkDirLock\n'
                               f'lock = WorkDirLock({str(work_dir)!r}).acquire()\nprint("locked", flush=True)\n'
                               'time.sleep(120)'], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == 'locked'
        start = time.perf_counter()
        status, err = run('train', '-c', DEMO, '--work-dir', work_dir, '--data-root', tmp_path / 'data',
                          *SMALL, capsys=capsys)
        assert status == 2 and time.perf_counter() - start < 30
        assert f"work dir '{work_dir}' is in use by another run (pid {holder.pid} on " in err
        status, err = run('test', '-c', DEMO, '--work-dir', work_dir, '--ckpt', __file__, capsys=capsys)
        assert status == 2 and f'pid {holder.pid}' in err
    finally:
        holder.kill()
        holder.wait()
    WorkDirLock(work_dir).acquire().release()          # the OS released the killed holder's lock


@pytest.mark.parametrize('layout,expected', [
    ('parent', "a parent of work dir '{work}': '{tmp}/file' is a file, not a folder"),
    ('checkpoints', "'{work}/checkpoints' must be a folder (for the run's checkpoints) but is a file"),
])
def test_paths_that_are_files_are_named_before_any_work(tmp_path, capsys, layout, expected):
    (tmp_path / 'file').write_text('')
    work_dir = tmp_path / 'file' / 'run' if layout == 'parent' else tmp_path / 'work'
    if layout == 'checkpoints':
        work_dir.mkdir()
        (work_dir / 'checkpoints').write_text('')
    status, err = run('train', '-c', DEMO, '--work-dir', work_dir, '--data-root', tmp_path / 'data', *SMALL,
                          capsys=capsys)
    assert status == 2 and 'Traceback' not in err
    assert expected.format(work=work_dir, tmp=tmp_path) in err
    assert not (tmp_path / 'data').exists()                       # nothing generated or trained


def test_interrupted_saves_leave_no_temporary_files(tmp_path, monkeypatch):
    target = tmp_path / 'checkpoints' / 'last.ckpt'
    AtomicCheckpointIO().save_checkpoint({'step': 1}, target)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', interrupted)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({'step': 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {'step': 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ['last.ckpt']
    stale = target.parent / '.last.ckpt.4242.tmp'                 # a process killed while saving
    stale.write_bytes(b'partial')
    claim(tmp_path, resume=True).release()
    assert not stale.exists() and target.is_file()
