"""A finished run as the report sees it: its ``results.json``, its ``config.py``, its model card, and the label
its own config gives it (model, task set, what differs from the paper's model), never its folder's name.

``results.json`` is read tolerantly: sections other than ``results`` and the reference predictors'
(``copy_last_frame``, ``train_mean``) are ignored, except ``checkpoint`` (the file it scored), used to
find the model card. The card (read from that checkpoint without loading its tensors) labels a run
whose ``config.py`` is missing, and must agree with the config's tasks.
"""
from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

from ..errors import UserError

RESULTS_FILE = 'results.json'
CONFIG_FILE = 'config.py'
REFERENCE_SECTIONS = {'copy_last_frame': 'copy last frame', 'train_mean': 'training mean'}
"""The reference predictors' sections of ``results.json`` and their names in tables."""

PAPER_BACKBONE = 'ViT-B/16'
INIT_NAMES = {'random': 'random init', 'laion': 'LAION init', 'imagenet': 'ImageNet init', 'clip': 'CLIP init'}

GROUPING_IGNORES = ('seed', 'data.seed', 'data.data_root', 'data.num_workers', 'data.pin_memory', 'model.pretrained',
                    'model.checkpointing', 'trainer.devices', 'trainer.num_nodes', 'trainer.accelerator',
                    'trainer.strategy', 'trainer.enable_progress_bar', 'trainer.progress_every_n_steps',
                    'trainer.log_every_n_steps', 'trainer.compile', 'trainer.checkpoint_every_n_steps',
                    'evaluation.save_preds', 'evaluation.figures')
"""Config keys that do not change what a run learns or scores: runs differing only in these (and the seed)
are repeats of one configuration. ``model.pretrained`` is a local path; the run's ``init`` feature stands in."""


class RunSkipped(UserError, ValueError):
    """A run the report leaves out; the message names the file and why."""


@dataclass
class RunRecord:
    """One run: where it is, what it scored, and what it is."""

    path: Path
    results: dict[str, dict[str, float]]
    references: dict[str, dict[str, dict[str, float]]]
    config: dict
    seed: Optional[int]
    model: str
    tasks: tuple[str, ...]
    features: dict = field(default_factory=dict)
    departures: tuple[str, ...] = ()
    ssim_data_range: float = 1.0
    checkpoint: Optional[dict] = None
    note: str = ''
    """What the report should say about this run (a checkpoint it could not read, a label from the card)."""

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def label(self) -> str:
        """``UniSTD · 10 tasks`` or ``UniSTD · 4 tasks (bair, kth, cityscapes, taxibj) · no temporal module``."""
        return ' · '.join([self.model, task_set_label(self.tasks), *self.departures])

    def grouping(self) -> dict:
        """The flattened config without :data:`GROUPING_IGNORES`, plus the init feature: equal for repeats."""
        flat = {k: v for k, v in flatten(self.config).items() if k not in GROUPING_IGNORES}
        flat['init'] = self.features.get('init')
        return flat


def flatten(config: Mapping, prefix: str = '') -> dict:
    """``{'a': {'b': 1}}`` → ``{'a.b': 1}`` (lists kept as values)."""
    flat = {}
    for key, value in config.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def task_set_label(tasks: Iterable[str]) -> str:
    """``10 tasks`` (the paper's), ``demo tasks``, ``kth only`` or ``3 tasks (kitti, traffic4cast, kth)``."""
    from ..tasks import TASK_SETS

    tasks = tuple(tasks)
    if set(tasks) == set(TASK_SETS['multi10']):
        return '10 tasks'
    if set(tasks) == set(TASK_SETS['multi_demo']):
        return 'demo tasks'
    if len(tasks) == 1:
        return f'{tasks[0]} only'
    return f'{len(tasks)} tasks ({", ".join(tasks)})'


def model_features(model: Mapping) -> tuple[dict, tuple[str, ...]]:
    """What a model is, as the paper's tables distinguish it, and the label parts that say how it differs from
    the paper's model. UniSTD: ``backbone`` (``ViT-B/16`` or the timm name), ``init`` (``clip``, ``laion``,
    ``imagenet``, ``random``, or the scheme of a custom file), ``ra_moe`` (several experts with searched
    ranks), ``temporal``. Every model: ``no skip`` and ``direct decoding`` when set."""
    features: dict = {}
    departures: list[str] = []
    if model.get('type') == 'UniSTD':
        from ..models.unistd import PAPER_LORA
        from ..modules.backbone import BACKBONE_SCHEMES, timm_model_name

        name = str(model.get('backbone', 'clip'))
        kwargs = dict(model.get('backbone_kwargs') or {})
        architecture = timm_model_name(name).split('.')[0]
        backbone = PAPER_BACKBONE if architecture.startswith('vit_base_patch16') and not kwargs else ' '.join(
            [architecture, *[f'{k}={v}' for k, v in sorted(kwargs.items())]])
        pretrained = model.get('pretrained', False)
        init = 'random' if pretrained in (False, None) or name == 'random' else (
            name if name in BACKBONE_SCHEMES else 'file')
        lora = model.get('lora', True)
        options = {**PAPER_LORA, **(dict(lora) if isinstance(lora, Mapping) else {})}
        experts = (int(options['qkv_experts']), int(options['proj_experts']))
        ra_moe = lora is not False and max(experts) > 1 and bool(options['learn_rank'])
        temporal = model.get('temporal', True) is not False
        features = {'backbone': backbone, 'init': init, 'ra_moe': ra_moe, 'temporal': temporal}
        if backbone != PAPER_BACKBONE:
            departures.append(f'backbone {backbone}')
        if init != 'clip':
            departures.append(INIT_NAMES.get(init, f'init from {pretrained}'))
        if model.get('train_backbone'):
            departures.append('backbone trained')
        if lora is False:
            departures.append('no LoRA')
        else:
            if experts == (1, 1):
                departures.append('one expert')
            elif experts != (PAPER_LORA['qkv_experts'], PAPER_LORA['proj_experts']):
                departures.append(f'{experts[0]}/{experts[1]} experts')
            if not options['learn_rank']:
                departures.append('fixed ranks')
        if not temporal:
            departures.append('no temporal module')
    if model.get('skip') is False:
        departures.append('no skip')
    if model.get('decode') == 'direct':
        departures.append('direct decoding')
    return features, tuple(departures)


def _metric_section(section, file: Path, name: str) -> dict[str, dict[str, float]]:
    """``task → metric → number`` of a ``results.json`` section; anything else is an error naming it."""
    if not isinstance(section, Mapping):
        raise RunSkipped(f'{file}: section {name!r} is a {type(section).__name__}, expected task → metrics')
    checked = {}
    for task, scores in section.items():
        if not isinstance(scores, Mapping):
            raise RunSkipped(f'{file}: {name}.{task} is a {type(scores).__name__}, expected metric → number')
        for metric, value in scores.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise RunSkipped(f'{file}: {name}.{task}.{metric} is {value!r}, expected a number')
        checked[str(task)] = {str(m): (math.nan if v is None else float(v)) for m, v in scores.items()}
    return checked


def read_results(path: Path) -> dict:
    """The parsed ``results.json`` of a run folder, checked to hold a ``results`` section."""
    file = path / RESULTS_FILE
    if not file.is_file():
        what = 'an unfinished run: no ' if (path / CONFIG_FILE).is_file() else 'no '
        raise RunSkipped(f'{path}: {what}{RESULTS_FILE}')
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunSkipped(f'{file}: not valid JSON ({error})') from None
    if not isinstance(data, Mapping) or 'results' not in data:
        raise RunSkipped(f"{file}: no 'results' section (sections: {sorted(data) if isinstance(data, Mapping) else []})")
    return dict(data)


def read_config(path: Path) -> Optional[dict]:
    """The run's resolved ``config.py`` as plain data; ``None`` when it has none."""
    from mmengine.config import Config

    file = path / CONFIG_FILE
    if not file.is_file():
        return None
    try:
        return Config.fromfile(str(file)).to_dict()
    except Exception as error:  # a config file is code: any failure is the file's
        raise RunSkipped(f'{file}: cannot be read ({type(error).__name__}: {error})') from None


def scored_checkpoint(path: Path, record: Optional[Mapping]) -> Optional[Path]:
    """The checkpoint ``results.json`` names (``checkpoint.path``, relative to the run or as given; a file in a
    ``checkpoints/`` folder is looked for in this run's first, so that a copied or moved run reads its own),
    else ``checkpoints/best.ckpt``, else ``checkpoints/last.ckpt``; ``None`` when there is none."""
    candidates = []
    named = record.get('path') if isinstance(record, Mapping) else record if isinstance(record, str) else None
    if named:
        named = Path(named)
        if named.is_absolute():
            candidates += [path / 'checkpoints' / named.name] if named.parent.name == 'checkpoints' else []
            candidates += [named]
        else:
            candidates += [path / named, named]
    candidates += [path / 'checkpoints' / 'best.ckpt', path / 'checkpoints' / 'last.ckpt']
    return next((c for c in candidates if c.is_file()), None)


def read_card(checkpoint: Optional[Path]) -> Optional[dict]:
    """The model card of a checkpoint as plain data (its tensors are not read); ``None`` without one."""
    from ..inference.checkpoint_io import load_checkpoint
    from ..inference.model_card import CARD_KEY

    if checkpoint is None:
        return None
    card = load_checkpoint(checkpoint, map_location='meta').get(CARD_KEY)
    return dict(card) if isinstance(card, Mapping) else None


def _task_names(entries) -> tuple[str, ...]:
    return tuple(str(e['name']) if isinstance(e, Mapping) else str(e) for e in entries or ())


def read_run(path: Path) -> RunRecord:
    """A :class:`RunRecord` of the run in ``path``; :class:`RunSkipped` naming the file when it cannot be used."""
    path = Path(path)
    data = read_results(path)
    file = path / RESULTS_FILE
    results = _metric_section(data['results'], file, 'results')
    references = {name: _metric_section(data[name], file, name) for name in REFERENCE_SECTIONS if data.get(name)}
    config = read_config(path)
    checkpoint = data.get('checkpoint') if isinstance(data.get('checkpoint'), Mapping) else None
    note = ''
    try:
        card = read_card(scored_checkpoint(path, data.get('checkpoint')))
    except ValueError as error:
        if config is None:
            raise RunSkipped(f'{path}: no {CONFIG_FILE}, and {error}') from None
        card, note = None, f'{error}; labelled from {CONFIG_FILE} alone'
    seed = config.get('seed', 0) if config is not None else None
    if config is None:
        if card is None:
            raise RunSkipped(f'{path}: no {CONFIG_FILE} and no checkpoint with a model card: the run cannot be labelled')
        config = {'model': dict(card['model']), 'tasks': _task_names(card.get('tasks')),
                  'method': dict(card.get('method') or {})}
        note = f'{path}: no {CONFIG_FILE}; labelled from the model card of its checkpoint'
    tasks = _task_names(config.get('tasks'))
    if card is not None and set(_task_names(card.get('tasks'))) != set(tasks):
        raise RunSkipped(f'{path}: {CONFIG_FILE} has tasks {list(tasks)} but its checkpoint\'s model card has '
                         f'{list(_task_names(card.get("tasks")))}: the config is not the one this run was trained with')
    if 'type' not in dict(config.get('model') or {}):
        raise RunSkipped(f'{path / CONFIG_FILE}: no model.type')
    model, tasks, features, departures = describe_config(config)
    evaluation = dict(config.get('evaluation') or {})
    return RunRecord(path, results, references, config, seed, model, tasks or tuple(results), features, departures,
                     float(evaluation.get('ssim_data_range', 1.0)), checkpoint, note)


METHOD_OF_MODEL = {'UniSTD': 'unistd', 'TAU': 'tau'}
"""The training method each model is trained with in the paper's setting (others: ``multitask``)."""


def describe_config(config: Mapping) -> tuple[str, tuple[str, ...], dict, tuple[str, ...]]:
    """A config's model label (``UniSTD``, ``TAU``…), task names, features and departures (:func:`model_features`;
    plus ``multitask method`` and the like when the training method is not the model's own)."""
    from .experiment import model_label

    model = dict(config.get('model') or {})
    label = model_label({'model': model})
    features, departures = model_features(model)
    method = config.get('method', 'unistd')
    method = str(method if isinstance(method, str) else dict(method).get('type', 'unistd'))
    if method != METHOD_OF_MODEL.get(label, 'multitask'):
        departures += (f'{method} method',)
    return label, _task_names(config.get('tasks')), features, departures


def expand(patterns: Iterable[str]) -> list[Path]:
    """Run folders of ``patterns`` (folders, globs, ``results.json`` files). A folder without ``results.json`` or
    ``config.py`` whose subfolders hold runs (a study's folder) stands for those subfolders."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern))) or [str(pattern)]
        for match in matches:
            path = Path(match)
            if path.name == RESULTS_FILE and path.is_file():
                path = path.parent
            if path.is_dir() and not (path / RESULTS_FILE).exists() and not (path / CONFIG_FILE).exists():
                children = [c for c in sorted(path.iterdir()) if c.is_dir() and not c.name.startswith('.')
                            and ((c / RESULTS_FILE).exists() or (c / CONFIG_FILE).exists())]
                if children:
                    found += [c for c in children if c not in found]
                    continue
            if path not in found:
                found.append(path)
    return found


def read_runs(patterns: Iterable[str]) -> tuple[list[RunRecord], list[str]]:
    """The runs of ``patterns`` and one line per path left out (naming the file and why); the runs' own notes
    are in their :attr:`RunRecord.note`."""
    runs, problems = [], []
    for path in expand(patterns):
        if not path.exists():
            problems.append(f'{path}: no such file or folder')
            continue
        try:
            runs.append(read_run(path))
        except RunSkipped as error:
            problems.append(str(error))
    return runs, problems
