"""Checkpoints written atomically and read without executing code.

Writing: a crash while saving never leaves a truncated file, and a run removes the temporary
files that a killed process left behind. Reading: every checkpoint (``--resume``, ``--ckpt``,
prediction) goes through :func:`load_checkpoint`, i.e. ``torch.load(weights_only=True)``, which
unpickles tensors and plain data only; a crafted pickle is refused, also when
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set (that variable is ignored here). A file that is no
checkpoint at all (an array, an HDF5 file, text, garbage) is named as what it is.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..errors import UserValueError

SAFE_GLOBALS: tuple = ()
"""Project types allowed inside a checkpoint besides tensors and plain data. Empty: our
checkpoints hold only state dicts, numbers, strings, lists and dicts (hyperparameters included)."""

TEMPORARY_GLOB = '.*.ckpt.*.tmp'
"""Name pattern of :class:`AtomicCheckpointIO`'s temporary files."""

FILE_SIGNATURES = ((b'\x93NUMPY', 'a NumPy .npy array'), (b'\x89HDF\r\n\x1a\n', 'an HDF5 file'),
                   (b'CDF\x01', 'a netCDF file'), (b'CDF\x02', 'a netCDF file'), (b'\x89PNG', 'a PNG image'),
                   (b'\xff\xd8\xff', 'a JPEG image'), (b'GIF8', 'a GIF image'), (b'\x1f\x8b', 'a gzip file'))
"""First bytes of the files most likely given as a checkpoint by mistake, and what they are."""

REFUSED_OBJECT_MARKS = ('GLOBAL', 'global', 'Unsupported class', 'reduce')
"""Words of torch's weights-only unpickler when a pickle asks for Python objects (code it would run)."""


def file_kind(path: Path) -> Optional[str]:
    """What a file that ``torch.load`` cannot read is, from its first bytes (``None``: nothing recognizable,
    or a zip archive that may be a damaged checkpoint)."""
    with open(path, 'rb') as handle:
        head = handle.read(512)
    if not head:
        return 'empty'
    for signature, kind in FILE_SIGNATURES:
        if head.startswith(signature):
            return kind
    if head.startswith(b'PK\x03\x04'):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if names and all(name.endswith('.npy') for name in names):
            return 'a NumPy .npz archive'
        return None if any(name.endswith('data.pkl') for name in names) else 'a zip archive'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return None
    return 'a text file' if all(c.isprintable() or c.isspace() for c in text) else None


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
    checkpoint (named as what it is: an array, empty, text…), or one holding Python objects beyond plain
    data (refused: loading it could run code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {str(path)!r} not found')
    try:
        with _without_forced_unsafe_loading(), torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # whatever torch.load raises on a file it cannot read
        raise _unreadable(path, error) from error
    if not isinstance(checkpoint, dict):
        raise UserValueError(f'checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    return checkpoint


def _unreadable(path: Path, error: Exception) -> ValueError:
    """The error for a file ``torch.load`` failed on: a pickle refused for the objects it asks for, or a
    file named as what it is."""
    lines = [line.strip() for line in str(error).split('\n') if line.strip()]
    if isinstance(error, pickle.UnpicklingError):
        marked = next((line for line in lines if any(mark in line for mark in REFUSED_OBJECT_MARKS)), None)
        if marked is not None:
            return UserValueError(f'checkpoint {str(path)!r} refused: it holds Python objects beyond tensors and plain '
                                  f'data ({marked}), and loading it could execute code; only checkpoints written by '
                                  'this project load (torch.load weights_only=True)')
    kind = file_kind(path)
    if kind == 'empty':
        return UserValueError(f'checkpoint {str(path)!r} is empty, not a checkpoint (an interrupted copy?)')
    if kind is not None:
        return UserValueError(f'checkpoint {str(path)!r} is {kind}, not a checkpoint (expected a checkpoints/*.ckpt '
                              'of tools/train.py or a .safetensors export)')
    reason = next((line for line in lines if 'Unsupported' in line), lines[0] if lines else 'no message')
    return UserValueError(f'checkpoint {str(path)!r} is not a checkpoint (torch.load cannot read it: '
                          f'{type(error).__name__}: {reason}); it may be truncated or in another format')


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
