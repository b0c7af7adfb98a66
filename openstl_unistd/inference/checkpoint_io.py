"""Checkpoints written atomically and read without executing code.

Writing: a crash while saving never leaves a truncated file, and a run removes the temporary
files that a killed process left behind. Reading: every checkpoint (``--resume``, ``--ckpt``,
prediction) goes through :func:`load_checkpoint`, i.e. ``torch.load(weights_only=True)``, which
unpickles tensors and plain data only; a crafted pickle is refused, also when
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set (that variable is ignored here).
"""
from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

SAFE_GLOBALS: tuple = ()
"""Project types allowed inside a checkpoint besides tensors and plain data. Empty: our
checkpoints hold only state dicts, numbers, strings, lists and dicts (hyperparameters included)."""

TEMPORARY_GLOB = '.*.ckpt.*.tmp'
"""Name pattern of :class:`AtomicCheckpointIO`'s temporary files."""


@contextlib.contextmanager
def _without_forced_unsafe_loading():
    """Hide ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` from ``torch.load`` (some torch versions let it turn
    ``weights_only=True`` off)."""
    saved = os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = saved


def load_checkpoint(path: Union[str, Path], map_location: Optional[Union[str, Callable, torch.device]] = 'cpu') -> dict:
    """``torch.load(path, weights_only=True)`` with clear errors: a missing file, a file that is not a
    checkpoint, or one holding Python objects beyond plain data (refused: loading it could run code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {str(path)!r} not found')
    try:
        with _without_forced_unsafe_loading(), torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        detail = str(error).split('\n')
        reason = next((line.strip() for line in detail if 'GLOBAL' in line or 'Unsupported' in line), detail[0])
        raise ValueError(f'checkpoint {str(path)!r} refused: it holds Python objects beyond tensors and plain data '
                         f'({reason}), and loading it could execute code; only checkpoints written by this '
                         f'project load (torch.load weights_only=True)') from None
    except (RuntimeError, EOFError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else 'empty'
        raise ValueError(f'checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {first}): truncated or '
                         f'not a checkpoint') from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f'checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    return checkpoint


def remove_stale_temporaries(folder: Union[str, Path]) -> list[Path]:
    """Delete the temporary files of saves that a killed process left in ``folder``; returns them.

    Call it only while holding the work dir's lock: no other process then writes there.
    """
    folder = Path(folder)
    stale = sorted(folder.glob(TEMPORARY_GLOB)) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file in the same folder, flushes it to disk, then renames it over the target;
    loads with :func:`load_checkpoint` (``weights_only=True``)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
        try:
            with open(temporary, 'wb') as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def load_checkpoint(self, path, map_location: Any = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict:
        return load_checkpoint(path, map_location)
