"""The keys a config may have, read from the options dataclasses that declare each section once.

A key's spelling, default, rule and description live in one dataclass field
(:func:`~openstl_unistd.core.options.option`): ``methods/options.py`` (``optim``, ``evaluation``,
``rank_search``, ``method``), ``datasets/options.py`` (``data``) and here (``trainer`` and the top-level
keys). :data:`SECTION_KEYS`, :data:`TOP_LEVEL_KEYS`, :data:`VALUE_RULES` and :func:`key_rows` (the rows of
docs/training.md's key table, checked by tests/test_docs.py) are derived from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..core.options import FLAG_OR_NONE, Rule, key_rows as section_rows, number, option, section_keys, value_rules
from ..datasets.options import DataOptions
from ..methods.options import DivergenceOptions, RankSearchOptions, TrainingOptions

LIGHTNING = "Lightning's"


@dataclass(frozen=True)
class RunKeys:
    """The top-level keys of a config besides its sections (``model`` has a row per option of its class)."""

    tasks: Optional[list] = option(None, 'task names or dicts (`openstl_unistd/tasks.py`)', shown='required')
    model: Optional[dict] = option(None)
    method: Union[str, dict] = option('unistd', "`dict(type='unistd')`, `dict(type='multitask')` or "
                                                "`dict(type='tau', alpha=0.1, tau=0.1)` (a plain name works too)")
    seed: int = option(0, "seeds everything (`L.seed_everything(seed, workers=True)`) and is `data.seed`'s default",
                       number(integer=True))
    init_from: Optional[str] = option(None, 'a checkpoint or `.safetensors` export whose weights the model starts '
                                            'from (see "Adding a task")', shown='none')
    train_only: Optional[list] = option(None, 'parameter names or prefixes to train, every other parameter frozen '
                                              "(e.g. `['encoders.rain', 'decoders.rain']`)",
                                        shown='none (all trainable)')


@dataclass(frozen=True)
class TrainerOptions:
    """Config section ``trainer``: Lightning ``Trainer`` arguments (``None``: Lightning's default) and ours."""

    max_epochs: Optional[int] = option(None, 'training epochs', number(1, integer=True), shown=LIGHTNING)
    precision: Optional[str] = option(None, "e.g. `'bf16-mixed'` (`--precision` overrides it)",
                                      shown=f"{LIGHTNING} (`'32-true'`)")
    accelerator: Optional[str] = option(None, "`'cpu'`, `'gpu'`, ...", shown=f"{LIGHTNING} (`'auto'`)")
    devices: Union[None, int, str, list] = option(None, 'devices per node (`--devices` overrides it; see '
                                                        '"Distributed")', shown=f"{LIGHTNING} (`'auto'`)")
    num_nodes: Optional[int] = option(None, 'nodes (`--num-nodes`)', number(1, integer=True), shown='`1`')
    strategy: Optional[str] = option(None, 'under several processes; another strategy given here is kept',
                                     shown='DDP with unused-parameter detection')
    log_every_n_steps: Optional[int] = option(None, 'steps between logged training rows', number(1, integer=True),
                                              shown=f'{LIGHTNING} (`50`)')
    check_val_every_n_epoch: Optional[int] = option(None, 'epochs between validations',
                                                    number(1, optional=True, integer=True),
                                                    shown=f'{LIGHTNING} (`1`)')
    limit_train_batches: Union[None, int, float] = option(
        None, 'training batches per epoch (a count or a fraction)', shown=f'{LIGHTNING} (all)')
    limit_val_batches: Union[None, int, float] = option(None, 'validation batches', shown=f'{LIGHTNING} (all)')
    limit_test_batches: Union[None, int, float] = option(None, 'test batches', shown=f'{LIGHTNING} (all)')
    checkpoint_every_n_steps: Optional[int] = option(
        None, 'also write `last.ckpt` every n training batches (see "Work dir")',
        number(1, optional=True, integer=True))
    deterministic: Optional[bool] = option(None, 'deterministic algorithms', shown=LIGHTNING)
    enable_progress_bar: Optional[bool] = option(None, 'see "Output"', shown='bar in a terminal, lines otherwise')
    progress_every_n_steps: Optional[int] = option(None, 'steps between plain progress lines (see "Output")',
                                                   number(1, optional=True, integer=True),
                                                   shown='`log_every_n_steps`')
    compile: Optional[bool] = option(None, "`torch.compile` the model's shared core for training: `None` on CUDA "
                                           'GPUs and off elsewhere, or `True`/`False` (docs/performance.md)',
                                     FLAG_OR_NONE)


SECTIONS = {'data': DataOptions, 'optim': TrainingOptions, 'evaluation': TrainingOptions,
            'rank_search': RankSearchOptions, 'trainer': TrainerOptions}
"""The dataclass that declares each config section."""

SECTION_KEYS = {name: section_keys(options, name) for name, options in SECTIONS.items()}
"""Keys each config section accepts; anything else is reported by name before a run starts."""

TOP_LEVEL_KEYS = (*section_keys(RunKeys, ''), *SECTIONS)
"""Top-level keys a config may define; any other (e.g. a misspelt section) is an error."""

VALUE_RULES: dict[str, Rule] = {**value_rules(RunKeys, '', ''),
                                **{key: rule for name, options in SECTIONS.items()
                                   for key, rule in value_rules(options, name).items()}}
"""Expected values of the keys whose wrong values would otherwise fail deep inside a run, or silently."""


def key_rows() -> dict[str, str]:
    """``{key: row}``: the rows of docs/training.md's key table that the options dataclasses give (every key
    but ``model.*``, whose rows follow the model class's arguments)."""
    rows = section_rows(RunKeys, '', '')
    rows.update(section_rows(DivergenceOptions, 'method'))
    for name, options in SECTIONS.items():
        rows.update(section_rows(options, name))
    return rows


__all__ = ['RunKeys', 'TrainerOptions', 'SECTIONS', 'SECTION_KEYS', 'TOP_LEVEL_KEYS', 'VALUE_RULES', 'key_rows']
