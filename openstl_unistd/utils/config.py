"""The composition root: config files (mmengine ``Config``, ``_base_`` inheritance) → objects.

Tools call these functions; models, methods and datasets never see a config.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping, Optional, Sequence

from torch import nn

from ..tasks import TaskSpec, resolve_tasks


def _model_types() -> dict[str, type]:
    from ..models.unistd import UniSTD

    return {'UniSTD': UniSTD}


def _key_exists(cfg: Mapping, dotted: str) -> bool:
    node = cfg
    for part in dotted.split('.'):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def load_config(path: str | Path, cfg_options: Optional[Mapping] = None):
    """Read a config file; ``cfg_options`` (``--cfg-options k=v``) override keys that must exist."""
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {str(path)!r} not found')
    cfg = Config.fromfile(str(path))
    if cfg_options:
        plain = cfg.to_dict()
        unknown = [key for key in cfg_options if not _key_exists(plain, key)]
        if unknown:
            raise KeyError(f'--cfg-options: key(s) {unknown} do not exist in {path}; '
                           f'top-level keys are {sorted(cfg.keys())}')
        cfg.merge_from_dict(dict(cfg_options))
    return cfg


def build_tasks(cfg: Mapping) -> list[TaskSpec]:
    """The config's ``tasks`` list as task specs."""
    if 'tasks' not in cfg:
        raise KeyError('the config has no "tasks" list')
    return resolve_tasks(cfg['tasks'])


def build_model(cfg: Mapping, tasks: Optional[Sequence[TaskSpec]] = None, load_pretrained: bool = True) -> nn.Module:
    """The model of ``cfg['model']`` (``type`` plus constructor arguments) for ``tasks``.

    With ``load_pretrained=False`` the architecture is built with random weights (e.g. to count
    parameters without the weights file).
    """
    if 'model' not in cfg:
        raise KeyError('the config has no "model" dict')
    options = copy.deepcopy(dict(cfg['model']))
    model_type = options.pop('type', None)
    types = _model_types()
    if model_type not in types:
        raise ValueError(f'model type {model_type!r} is unknown; known types: {sorted(types)}')
    if not load_pretrained:
        options['pretrained'] = False
    options = {k: (v.to_dict() if hasattr(v, 'to_dict') else v) for k, v in options.items()}
    return types[model_type](tasks=list(tasks if tasks is not None else build_tasks(cfg)), **options)
