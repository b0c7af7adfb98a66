"""The composition root: config files (mmengine ``Config``, ``_base_`` inheritance) → objects.

Tools call these functions; models, methods and datasets never see a config.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

from torch import nn

from ..core.options import check_values as options_check_values
from ..errors import UserKeyError, UserTypeError, UserValueError, check_known_keys
from ..methods.registry import check_method, create_method, method_spec
from ..tasks import TaskSpec, resolve_tasks
from .config_keys import RunKeys, SECTION_KEYS, SECTIONS, TOP_LEVEL_KEYS, VALUE_RULES

__all__ = ['SECTION_KEYS', 'TOP_LEVEL_KEYS', 'VALUE_RULES', 'load_config', 'check_config', 'check_values',
           'build_tasks', 'build_model', 'build_datamodule', 'build_method', 'build_trainer', 'compile_training']

_MISSING = object()


def _value_at(cfg: Mapping, dotted: str):
    """The value at a dotted key, or ``_MISSING``."""
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _key_allowed(cfg: Mapping, dotted: str) -> bool:
    """A key that exists, a top-level key a config may define (:data:`TOP_LEVEL_KEYS`, e.g. ``init_from``),
    or a new key inside an existing section or one of those (its section checks the leaf)."""
    head = dotted.partition('.')[0]
    if head not in cfg:
        return head in TOP_LEVEL_KEYS
    return _value_at(cfg, dotted) is not _MISSING or isinstance(_value_at(cfg, dotted.rpartition('.')[0]), Mapping)


def load_config(path: str | Path, cfg_options: Optional[Mapping] = None):
    """Read a config file (``config_file.read_config_file``) and apply ``cfg_options`` (``--cfg-options k=v``).

    An option must name an existing key, a top-level key a config may define, or a key inside an existing
    section; the section's builder then rejects leaf names it does not know, so every typo is reported by
    name. A dict value merges into the dict it names, as a ``_base_`` child's does (``_delete_=True`` in it
    replaces that dict instead), and replaces any other value.
    """
    from .config_file import read_config_file

    cfg = read_config_file(path)
    if cfg_options:
        plain = cfg.to_dict()
        check_known_keys(cfg_options, [key for key in cfg_options if _key_allowed(plain, key)], '--cfg-options',
                         valid=f'they do not exist in {path}, whose top-level keys are {sorted(cfg.keys())}')
        options = {}
        for key, value in cfg_options.items():
            current = _value_at(plain, key)
            if isinstance(value, Mapping) and current is not _MISSING and not isinstance(current, Mapping):
                value = {'_delete_': True, **value}
            options[key] = value
        cfg.merge_from_dict(options)
    return cfg


def build_tasks(cfg: Mapping) -> list[TaskSpec]:
    """The config's ``tasks`` list as task specs; one name (``--cfg-options tasks=kth``) is a list of one."""
    if 'tasks' not in cfg:
        raise UserKeyError('the config has no "tasks" list')
    entries = cfg['tasks']
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, (list, tuple)):
        raise UserValueError(f'config key tasks: expected a list of task names or dicts, got {entries!r} '
                             f'({type(entries).__name__})')
    try:
        return resolve_tasks(entries)
    except (ValueError, TypeError) as error:
        raise type(error)(f'config key tasks: {error}') from error


def build_model(cfg: Mapping, tasks: Optional[Sequence[TaskSpec]] = None, load_pretrained: bool = True) -> nn.Module:
    """The model of ``cfg['model']`` (``type`` and options) for ``tasks`` (default: the config's); see
    :func:`~openstl_unistd.models.registry.create_model`. With ``load_pretrained=False`` the architecture is
    built with random weights (e.g. to count parameters without the weights file)."""
    from ..models.registry import MODEL_TYPES, create_model  # here: importing the config rules builds no model class

    if 'model' not in cfg:
        raise UserKeyError('the config has no "model" dict')
    options = _section(cfg, 'model')
    if 'type' not in options:
        raise UserKeyError(f'config section \'model\' has no "type" (registered model types: {sorted(MODEL_TYPES)})')
    if not load_pretrained and 'pretrained' in options:
        options['pretrained'] = False
    return create_model(options.pop('type'), tasks if tasks is not None else build_tasks(cfg), **options)


def _section(cfg: Mapping, name: str) -> dict:
    value = cfg.get(name) or {}
    return value.to_dict() if hasattr(value, 'to_dict') else dict(value)


def _checked(options: dict, allowed: Sequence[str], section: str) -> dict:
    check_known_keys(options, allowed, f'config section {section!r}')
    return options


def check_values(cfg: Mapping) -> None:
    """A :class:`~openstl_unistd.errors.UserValueError` naming the first key whose value breaks its rule
    (:data:`VALUE_RULES`, declared with the key's field), with expected and actual value."""
    options_check_values(RunKeys, cfg, '', '')
    for section, options in SECTIONS.items():
        options_check_values(options, _section(cfg, section), section)


def _check_sections(cfg: Mapping) -> None:
    """The model and every section are dicts (``optim = 0.001`` would fail far from the config otherwise)."""
    for name in ('model', *SECTION_KEYS):
        value = cfg.get(name)
        if value is not None and not isinstance(value, Mapping):
            origin = f' {str(cfg.filename)!r}' if getattr(cfg, 'filename', None) else ''
            raise UserTypeError(f'config{origin}: key {name}: expected a dict of options ({name} = dict(...)), got '
                                f'{value!r} ({type(value).__name__})')


def _find_key(options: Mapping, name: str, prefix: str) -> Optional[tuple[str, object]]:
    """``(dotted path, value)`` of the first key ``name`` in the nested dicts of ``options``."""
    for key, value in options.items():
        if key == name:
            return f'{prefix}.{key}', value
        if isinstance(value, Mapping):
            found = _find_key(value, name, f'{prefix}.{key}')
            if found:
                return found
    return None


def check_model(cfg: Mapping, tasks: Sequence[TaskSpec]) -> None:
    """Every option of ``cfg['model']`` is one its class takes (named with the valid ones otherwise), and the
    model builds: its structure is built on the ``meta`` device (no memory, no weights read), so an option
    that a part of it rejects (``model.backbone_kwargs.dpth``) is named before any data or work dir is touched."""
    import re

    import torch

    from ..models.registry import check_model_type, model_arguments

    options = _section(cfg, 'model')
    model_class = check_model_type(options.get('type'))
    check_known_keys({k: v for k, v in options.items() if k != 'type'}, model_arguments(options['type']),
                     f"config section 'model' ({model_class.__name__})")
    try:
        with torch.device('meta'):
            build_model(cfg, tasks, load_pretrained=False)
    except TypeError as error:
        match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        found = _find_key(options, match.group(1), 'model') if match else None
        if found is None:
            raise
        raise UserKeyError(f'config key {found[0]} (given {found[1]!r}): {error}') from error


def check_config(cfg: Mapping) -> list[TaskSpec]:
    """Fail fast on unknown sections or section keys, bad values, task names, method, model type or model
    options; returns the tasks."""
    origin = f' in {cfg.filename}' if getattr(cfg, 'filename', None) else ''
    check_known_keys(cfg.keys(), TOP_LEVEL_KEYS, f'config{origin}',
                     valid=f'valid sections and top-level keys: {sorted(TOP_LEVEL_KEYS)}')
    _check_sections(cfg)
    for section, keys in SECTION_KEYS.items():
        _checked(_section(cfg, section), keys, section)
    check_values(cfg)
    method, _ = method_spec(cfg)
    tasks = build_tasks(cfg)
    check_model(cfg, tasks)
    check_method(method).check_model_type(_section(cfg, 'model').get('type'))
    return tasks


def build_datamodule(cfg: Mapping, tasks: Sequence[TaskSpec], data_root: Optional[str] = None):
    """The multi-task data module of ``cfg['data']``; ``data_root`` overrides the config's."""
    from ..datasets.datamodule import MultiTaskDataModule

    options = _checked(_section(cfg, 'data'), SECTION_KEYS['data'], 'data')
    options.setdefault('seed', int(cfg.get('seed', 0)))
    root = data_root or options.pop('data_root', 'data')
    options.pop('data_root', None)
    return MultiTaskDataModule(tasks, root, options.pop('datasets', None), **options)


def build_method(cfg: Mapping, model: nn.Module, tasks: Sequence[TaskSpec], save_dir: Optional[str] = None):
    """The LightningModule of ``cfg['method']`` (a registered method: ``unistd``, ``multitask``, ``tau``…)
    around ``model``: the ``optim`` and ``evaluation`` options, the ``method`` dict's own and the sections
    the method declares (UniSTD's ``rank_search``), see :func:`~openstl_unistd.methods.registry.create_method`."""
    name, options = method_spec(cfg)
    sections = {section: _section(cfg, section) for section in check_method(name).sections}
    return create_method(name, model, tasks, save_dir=save_dir, **options, **sections,
                         **_checked(_section(cfg, 'optim'), SECTION_KEYS['optim'], 'optim'),
                         **_checked(_section(cfg, 'evaluation'), SECTION_KEYS['evaluation'], 'evaluation'))


def _distributed_strategy(options: dict):
    """Strategy for the trainer: ``'auto'``/``'ddp'`` become DDP that finds the parameters a step left
    unused (each step trains one task's encoder and decoder); other choices are kept."""
    from lightning.pytorch.strategies import DDPStrategy

    strategy = options.get('strategy', 'auto')
    if strategy in (None, 'auto', 'ddp'):
        return DDPStrategy(find_unused_parameters=True)
    return strategy


def compile_training(cfg: Mapping, trainer) -> bool:
    """Whether training compiles the model's shared core (``trainer.compile``; ``None``, the default: on
    when the trainer runs on CUDA GPUs, off elsewhere, where compiling costs more than it saves)."""
    wanted = _section(cfg, 'trainer').get('compile')
    if wanted is None:
        from lightning.pytorch.accelerators import CUDAAccelerator

        return isinstance(trainer.accelerator, CUDAAccelerator)
    return bool(wanted)


def build_trainer(cfg: Mapping, work_dir: str, resuming: bool = False, **overrides):
    """A Lightning trainer writing logs and atomic ``checkpoints/{last,best}.ckpt`` under ``work_dir``;
    ``best.ckpt`` is written at the end of a validation, before that epoch's ``last.ckpt``, so that a kill
    between the two never leaves ``best.ckpt`` behind the ``last.ckpt`` a resumed run continues from.

    ``overrides`` (command-line ``--devices`` etc.) replace keys of ``cfg['trainer']`` when not ``None``.
    Under several processes (``devices`` or ``num_nodes`` > 1, torchrun, SLURM) the default strategy is
    DDP with unused-parameter detection (docs/training.md, "Distributed"). ``resuming``: the run
    continues a checkpoint, so the CSV log drops the rows of the steps it redoes.
    """
    import warnings

    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.strategies import DDPStrategy

    from .csv_log import RunCSVLogger
    from .last_checkpoint import LastCheckpoint
    from .progress import PlainProgress
    from .scored_checkpoint import RecordingCheckpointIO

    options = _checked(_section(cfg, 'trainer'), SECTION_KEYS['trainer'], 'trainer')
    options.update({k: v for k, v in overrides.items() if v is not None})
    # Our training loader resumes mid-epoch through the data module's state; Lightning looks only at the loader.
    warnings.filterwarnings('ignore', message=".*ended before the epoch ended and your dataloader is not resumable")
    # Lightning's own use of a deprecated torch.utils._pytree API, printed at every loader start: noise in logs.
    warnings.filterwarnings('ignore', message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    options.pop('compile', None)      # applied to the model (compile_training), not a Lightning option
    every_n_steps = options.pop('checkpoint_every_n_steps', None)
    progress_every = options.pop('progress_every_n_steps', None)
    checkpoints = f'{work_dir}/checkpoints'
    plain_progress = None
    if options.get('enable_progress_bar') is None and not sys.stdout.isatty():  # a log file: whole lines, no bar
        options['enable_progress_bar'] = False
        options.setdefault('enable_model_summary', False)
        plain_progress = int(progress_every or options.get('log_every_n_steps') or 50)
    elif options.get('enable_progress_bar') is False and progress_every:  # no bar asked for, lines wanted
        plain_progress = int(progress_every)

    def make(trainer_options: dict) -> L.Trainer:
        callbacks = [  # best.ckpt at validation end, before last.ckpt at epoch end (docs/training.md, "Resume")
            ModelCheckpoint(dirpath=checkpoints, filename='best', monitor='val/score', mode='min', save_top_k=1,
                            enable_version_counter=False, auto_insert_metric_name=False,
                            save_on_train_epoch_end=False),
            LastCheckpoint(checkpoints, every_n_batches=every_n_steps),
        ]
        if plain_progress:
            callbacks.append(PlainProgress(plain_progress))
        loggers = [RunCSVLogger(work_dir, name='logs', version='', resuming=resuming),
                   TensorBoardLogger(work_dir, name='logs', version='')]
        return L.Trainer(default_root_dir=work_dir, callbacks=callbacks, logger=loggers,
                         plugins=[RecordingCheckpointIO()], use_distributed_sampler=False, **trainer_options)

    trainer = make(options)
    if type(trainer.strategy) is DDPStrategy and options.get('strategy', 'auto') in (None, 'auto', 'ddp'):
        trainer = make({**options, 'strategy': _distributed_strategy(options)})
    return trainer
