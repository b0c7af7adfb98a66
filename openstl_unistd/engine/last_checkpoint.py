"""``checkpoints/last.ckpt``: written at every epoch end, validation or not, and every n batches if asked.

Why not Lightning's ``ModelCheckpoint`` for it: with validation disabled our configuration of it
saved nothing, its step counting follows optimizer steps (two per batch while UniSTD searches
ranks), and a step checkpoint on an epoch's last batch is taken before that epoch's validation and
end, which Lightning then skips on resume. This callback counts training batches and leaves the
last batch of an epoch to the epoch-end save that follows it, so every ``last.ckpt`` resumes
into exactly the uninterrupted run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn


class LastCheckpoint(L.Callback):
    """Saves ``<dirpath>/last.ckpt`` after each training epoch (after its validation) and, with
    ``every_n_batches``, after every n-th training batch that is not the last of its epoch."""

    def __init__(self, dirpath: str | Path, every_n_batches: Optional[int] = None) -> None:
        self.path = Path(dirpath) / 'last.ckpt'
        self.every_n_batches = every_n_batches

    def _save(self, trainer: L.Trainer) -> None:
        if not trainer.sanity_checking and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.path, weights_only=False)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self.every_n_batches or batch_idx + 1 >= trainer.num_training_batches:
            return
        if (trainer.fit_loop.total_batch_idx + 1) % self.every_n_batches == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self._save(trainer)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module, checkpoint: dict) -> None:
        """Warn about a checkpoint taken on an epoch's last batch before its validation (not one of ours):
        Lightning resumes it at the next epoch without validating that epoch; training continues exactly."""
        loop = checkpoint.get('loops', {}).get('fit_loop', {})
        batches = loop.get('epoch_loop.batch_progress', {})
        total = batches.get('total', {})
        if batches.get('is_last_batch') and total.get('completed') == total.get('processed', 0) - 1:
            rank_zero_warn(f'the checkpoint was saved on the last batch of epoch {checkpoint.get("epoch")}, before its '
                           f'validation: training resumes exactly at the next epoch, but epoch '
                           f'{checkpoint.get("epoch")} is not validated (no val/loss row, best.ckpt not updated)')
