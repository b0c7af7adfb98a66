"""Which checkpoint a test scored: ``results.json`` names it by path, epoch, step and SHA-256.

The trainer reads checkpoints through :class:`RecordingCheckpointIO`, which notes the epoch and step
of the file it last loaded, so the record is of the file Lightning actually tested, with no second
read of the checkpoint.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from ..inference.checkpoint_io import AtomicCheckpointIO


class RecordingCheckpointIO(AtomicCheckpointIO):
    """:class:`~..inference.checkpoint_io.AtomicCheckpointIO` that keeps ``loaded``: the path, epoch and step
    of the checkpoint it loaded last (``None`` before any load, or after :meth:`forget`)."""

    loaded: Optional[dict] = None

    def load_checkpoint(self, path, *args, **kwargs) -> dict:
        checkpoint = super().load_checkpoint(path, *args, **kwargs)
        self.loaded = {'path': str(Path(path).resolve()), 'epoch': checkpoint.get('epoch'),
                       'global_step': checkpoint.get('global_step')}
        return checkpoint

    def forget(self) -> None:
        self.loaded = None


def file_sha256(path: str | Path, chunk: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def scored_checkpoint(trainer) -> Optional[dict]:
    """``{'path', 'epoch', 'global_step', 'sha256'}`` of the checkpoint the trainer's last test loaded, or
    ``None`` when it tested the weights in memory."""
    io = trainer.strategy.checkpoint_io
    loaded = getattr(io, 'loaded', None)
    if loaded is None:
        return None
    return {**loaded, 'sha256': file_sha256(loaded['path'])}
