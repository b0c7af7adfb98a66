"""What a run's config says about its trained model, as the typed values ``inference/`` takes.

The model card of a run (model and method options from the config, each task's scaling from the data
modules' loaders, the backbone's identity from its weights file) and its :class:`~..inference.extension.Extension`
(``init_from``, ``train_only``). Here, in the engine, because both read the raw config; ``inference/``
never sees it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from ..core.scaling import Scaling
from ..errors import UserValueError
from ..inference.extension import Extension
from ..inference.model_card import ModelCard, backbone_record, plain_data
from ..methods.registry import method_spec
from ..tasks import TaskSpec


def datamodule_scalings(datamodule, tasks: Sequence[str]) -> dict[str, Scaling]:
    """Scalings of ``tasks`` from a data module's datasets already built (test, then val, then train)."""
    found = {}
    for split in ('test', 'val', 'train'):
        for name, dataset in getattr(datamodule, 'splits', {}).get(split, {}).items():
            if name in tasks and name not in found:
                found[name] = dataset.scaling
    return found


def card_from_config(cfg: Mapping, tasks: Sequence[TaskSpec], scalings: Mapping[str, Scaling],
                     backbone: Optional[dict] = None, identify_backbone: bool = True) -> ModelCard:
    """The card of a model built from ``cfg`` for ``tasks``; unless given, the backbone's identity is read
    from the weights file of ``cfg['model']`` (with ``identify_backbone``; else it stays unknown)."""
    model = plain_data(dict(cfg['model']))
    method, options = method_spec(cfg)
    if backbone is None and identify_backbone:
        backbone = backbone_record(model)
    return ModelCard(model, tuple(tasks), dict(scalings), {'type': method, **plain_data(options)}, backbone)


def training_card(cfg: Mapping, tasks: Sequence[TaskSpec], datamodules: Sequence,
                  inherited: Optional[ModelCard] = None) -> ModelCard:
    """The card of a training run: scalings of the data modules' datasets (for tasks none of them has
    built, those of the ``inherited`` card of ``init_from``), the backbone identified by its file."""
    names = [t.name for t in tasks]
    scalings: dict[str, Scaling] = {}
    for datamodule in datamodules:
        for name, scaling in datamodule_scalings(datamodule, names).items():
            scalings.setdefault(name, scaling)
    if inherited is not None:
        for name, scaling in inherited.scalings.items():
            scalings.setdefault(name, scaling)
    missing = [name for name in names if name not in scalings]
    if missing:
        raise UserValueError(f'no dataset gives the scaling of task(s) {missing}')
    backbone = backbone_record(plain_data(dict(cfg['model'])))
    if inherited is not None and inherited.backbone is not None and backbone is not None:
        if inherited.backbone.get('sha256') != backbone.get('sha256'):
            raise UserValueError(f"init_from: the model was trained with backbone {inherited.backbone}, the config's "
                                 f'model has {backbone}; use the same pretrained weights (or none for both)')
        seed = inherited.backbone.get('seed')
        if seed is not None and backbone.get('seed') is not None and seed != backbone['seed']:
            raise UserValueError(f"init_from: the model's random backbone was drawn with seed {seed}, the config's model "
                                 f"has backbone_seed={backbone['seed']}; set model.backbone_seed={seed}")
    return card_from_config(cfg, tasks, scalings, backbone)


def extension_from_config(cfg: Mapping, tasks: Sequence[TaskSpec]) -> Optional[Extension]:
    """The config's ``init_from`` (a checkpoint or export) and ``train_only`` (parameter names or prefixes) as
    an :class:`~..inference.extension.Extension`, or ``None`` when it sets neither key."""
    init_from, train_only = cfg.get('init_from'), cfg.get('train_only')
    if init_from is None and not train_only:
        return None
    if init_from is not None:
        init_from = Path(init_from)
        if not init_from.is_file():
            raise FileNotFoundError(f'init_from: {str(init_from)!r} not found (a checkpoint or a .safetensors export)')
    entries = [train_only] if isinstance(train_only, str) else list(train_only or [])
    if not all(isinstance(e, str) and e for e in entries):
        raise UserValueError(f'train_only must be a list of parameter names or prefixes, got {train_only!r}')
    return Extension(init_from, tuple(entries), tuple(tasks))
