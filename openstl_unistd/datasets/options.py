"""The ``data`` section of a config: where the datasets are and how batches are drawn, declared once.

``engine/config.py`` checks a config's ``data`` keys and values against these fields and builds the
:class:`~.datamodule.MultiTaskDataModule` from them, whose arguments take their defaults from here;
docs/training.md's key table shows their rows (checked by tests/test_docs.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Union

from ..core.options import FLAG, Rule, number, option


def _sampling(value) -> bool:
    if isinstance(value, str):
        return value in ('proportional', 'uniform')
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class DataOptions:
    """Config section ``data`` (see :class:`~.datamodule.MultiTaskDataModule` for what each does)."""

    data_root: str = option('data', 'datasets folder (`--data-root` overrides it)')
    datasets: Optional[Mapping] = option(None, 'per-task loader options, `dict(<task>=dict(...))` (docs/datasets.md)',
                                         shown='none')
    batch_size: int = option(16, 'training batch size (every batch is of one task)', number(1, integer=True))
    val_batch_size: Optional[int] = option(None, 'validation and test batch size',
                                           number(1, optional=True, integer=True), shown='`batch_size`')
    num_workers: int = option(0, 'DataLoader worker processes', number(0, integer=True))
    sampling: Union[str, float] = option(
        'proportional', "how often each task is drawn: `'proportional'` to its size, `'uniform'`, or a temperature "
                        'τ > 0 (p ∝ n^(1/τ))', Rule(_sampling, "'proportional', 'uniform' or a temperature > 0"))
    seed: int = option(0, 'seed of the task and sample order', number(integer=True), shown='`seed`')
    steps_per_epoch: Optional[int] = option(None, 'training steps per epoch (`None`: one pass over the training '
                                                  'samples)', number(1, optional=True, integer=True))
    pin_memory: bool = option(True, 'DataLoader `pin_memory`', FLAG)
