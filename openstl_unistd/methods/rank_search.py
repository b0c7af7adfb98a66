"""The end of UniSTD's rank search: a callback that rounds and freezes every rank."""
from __future__ import annotations

import lightning as L

from ..modules.ra_moe import ra_moe_modules, round_and_freeze_ranks


class RankSearch(L.Callback):
    """Rank search lasts ``epochs`` epochs; at the start of epoch ``epochs`` every rank is rounded
    to an integer and frozen (paper: 10 of 90 epochs). ``epochs=0`` freezes them before training."""

    def __init__(self, epochs: int = 10) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        adapters = ra_moe_modules(pl_module.model)
        if trainer.current_epoch >= self.epochs and any(not m.frozen for m in adapters):
            round_and_freeze_ranks(pl_module.model)
            total = sum(float(m.rank.sum()) for m in adapters)
            pl_module.print(f'rank search ended at epoch {trainer.current_epoch}: ranks rounded and frozen, '
                            f'total rank {total:g}')
