"""A work dir belongs to one run: checked paths, no silent reuse, and a lock against concurrent runs.

A new training run refuses a work dir that holds another run's outputs (checkpoints, logs,
results) unless it resumes (``--resume``) or replaces them (``--overwrite``): otherwise it would test
the old ``best.ckpt`` and mix the old logs with its own. While a run (or a test) works in a dir it
holds ``<work dir>/.lock`` (an OS file lock, released when the process ends, even when killed), so
a second run there stops at once with a message naming the first.

A run checks the work dir first without writing anything (:func:`check_work_dir`), then runs every
other check (config, data, model), and claims it (:func:`claim`) only when all have passed: a run
that fails a check leaves nothing in the work dir. A test, or a training run, that starts in a work
dir renames the ``results.json`` there to ``results.previous.json``: ``results.json`` is the result
of the latest test that completed, never one that a newer failed test or a longer run made stale.
"""
from __future__ import annotations

import datetime
import os
import shutil
import socket
import sys
from pathlib import Path

from ..inference.checkpoint_io import remove_stale_temporaries

RESULTS = 'results.json'
PREVIOUS_RESULTS = 'results.previous.json'
RUN_OUTPUTS = ('checkpoints', 'logs', RESULTS, PREVIOUS_RESULTS, 'figures', 'saved', 'config.py')
"""What a training run writes in its work dir (``--overwrite`` removes exactly these)."""

FOLDERS = ('checkpoints', 'logs', 'figures', 'saved')
LOCK_NAME = '.lock'


def check_paths(work_dir: Path) -> None:
    """Fail before any work when the work dir, one of its parents or one of its output folders is a file."""
    for path in [work_dir, *work_dir.parents]:
        if path.exists() and not path.is_dir():
            where = 'the work dir' if path == work_dir else f'a parent of work dir {str(work_dir)!r}'
            raise NotADirectoryError(f'{where}: {str(path)!r} is a file, not a folder')
    for name in FOLDERS:
        path = work_dir / name
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f'work dir {str(work_dir)!r}: {str(path)!r} must be a folder (for the run\'s '
                                     f'{name}) but is a file; move it away or choose another --work-dir')


def previous_run(work_dir: Path) -> list[str]:
    """The outputs of an earlier training run found in ``work_dir`` (relative paths)."""
    found = [str(p.relative_to(work_dir)) for p in sorted((work_dir / 'checkpoints').glob('*.ckpt'))]
    for name in ('logs/metrics.csv', RESULTS, PREVIOUS_RESULTS):
        if (work_dir / name).is_file():
            found.append(name)
    return found


def _refuse_another_run(work_dir: Path, found: list[str]) -> None:
    raise FileExistsError(f'work dir {str(work_dir)!r} holds another run ({", ".join(found[:4])}'
                          f'{", ..." if len(found) > 4 else ""}): pass --resume to continue it, --overwrite to '
                          f'replace it, or choose another --work-dir')


def refuse_reuse(work_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a work dir holding another run unless resuming; with ``overwrite``, remove that run's outputs."""
    found = previous_run(work_dir)
    if not found:
        return
    if overwrite:
        for name in RUN_OUTPUTS:
            path = work_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        print(f'--overwrite: removed the previous run in {str(work_dir)!r} ({", ".join(found)})', file=sys.stderr)
    elif not resume:
        _refuse_another_run(work_dir, found)


def retire_results(work_dir: Path) -> None:
    """Rename ``results.json`` to ``results.previous.json`` (replacing an older one): a run or test starts."""
    results = work_dir / RESULTS
    if results.is_file():
        os.replace(results, work_dir / PREVIOUS_RESULTS)


def _in_use(work_dir: Path, holder: str) -> FileExistsError:
    return FileExistsError(f'work dir {str(work_dir)!r} is in use by another run ({holder}); wait for it to end '
                           f'or choose another --work-dir')


class WorkDirLock:
    """An exclusive, non-blocking OS lock on ``<work_dir>/.lock`` holding who took it.

    ``acquire`` raises ``FileExistsError`` naming the holder (pid, host, start time, command) when
    another process holds it. The OS releases the lock when the holder ends, however it ends.
    """

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / LOCK_NAME
        self._handle = None

    def holder(self) -> str | None:
        """Who holds the lock now (``None``: nobody); creates nothing."""
        try:
            import fcntl
        except ImportError:
            return None
        if not self.path.is_file():
            return None
        with open(self.path) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or 'another process'
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None

    def acquire(self) -> 'WorkDirLock':
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, 'a+')
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or 'another process'
            handle.close()
            raise _in_use(self.path.parent, holder) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().isoformat(timespec='seconds')
        handle.write(f'pid {os.getpid()} on {socket.gethostname()}, started {started}: {" ".join(sys.argv)}\n')
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def check_work_dir(work_dir: Path, resume: bool = False, overwrite: bool = False, training: bool = True) -> None:
    """What :func:`claim` will check, checked now without writing anything: paths, a live run there, and for a
    training run another run's outputs (unless ``resume`` or ``overwrite``)."""
    check_paths(work_dir)
    holder = WorkDirLock(work_dir).holder()
    if holder is not None:
        raise _in_use(work_dir, holder)
    if training and not (resume or overwrite):
        found = previous_run(work_dir)
        if found:
            _refuse_another_run(work_dir, found)


def claim(work_dir: Path, resume: bool = False, overwrite: bool = False, training: bool = True) -> WorkDirLock:
    """Lock ``work_dir`` for this process and, for a training run, refuse (or clear, with ``overwrite``) another
    run's outputs; removes temporary checkpoint files of killed saves and retires the last ``results.json``.
    Call on global rank 0 only, after every other check of the run has passed."""
    check_paths(work_dir)
    lock = WorkDirLock(work_dir).acquire()
    try:
        if training:
            refuse_reuse(work_dir, resume, overwrite)
        remove_stale_temporaries(work_dir / 'checkpoints')
        retire_results(work_dir)
    except BaseException:
        lock.release()
        raise
    return lock

