"""``load_predictor`` and ``load_model``: a trained model file, with the config it was trained with when the
file has no card.

A checkpoint or export that carries its model card needs nothing else (:func:`~..inference.predictor.predictor_of`);
an older checkpoint without one is rebuilt from its config, its scalings read from the config's test
datasets. Here, in the engine, because that second path reads configs and data.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Optional, Union

import torch
from torch import nn

from ..core.scaling import Scaling
from ..errors import UserValueError
from ..inference.model_files import load_state_strictly, read_model_file
from ..inference.predictor import PathLike, Predictor, predictor_of
from .config import build_datamodule, build_model, build_tasks, load_config
from .trained_model_config import card_from_config, datamodule_scalings


def load_predictor(path: PathLike, config: Union[PathLike, Mapping, None] = None,
                   cfg_options: Optional[Mapping] = None, backbone_file: Optional[PathLike] = None,
                   device: Union[str, torch.device] = 'cpu', data_root: Optional[str] = None) -> Predictor:
    """A :class:`~..inference.predictor.Predictor` from a checkpoint (``.ckpt``) or an export (``.safetensors``):
    the model with its card, ready to forecast in physical units (``predict(x, task, horizon)``).

    The file's model card says everything (tasks, scalings, model options). A file with a card ignores
    ``config`` and ``cfg_options``, with a warning. For a checkpoint without a card the model is built
    from ``config`` (a path or a loaded config, plus ``cfg_options``), the scalings from the config's test
    datasets under ``data_root``. ``backbone_file`` is the pretrained weights file of an export (default:
    the path recorded at training), checked by its SHA-256.
    """
    model_file = read_model_file(path)
    if config is not None and model_file.card is not None:
        given = f'config {str(config)!r}' if isinstance(config, (str, Path)) else 'the given config'
        warnings.warn(f'{model_file.path}: {given} ignored: the {model_file.kind} carries its model card, which '
                      'is used (a config is only for checkpoints without one)', stacklevel=2)
        config = cfg_options = None
    if config is None:
        if cfg_options:
            raise UserValueError('cfg_options need a config')
        return predictor_of(model_file, backbone_file, device)

    if not isinstance(config, (str, Path)) and cfg_options:
        raise UserValueError('cfg_options apply to a config file; merge them into a loaded config yourself')
    cfg = load_config(config, cfg_options) if isinstance(config, (str, Path)) else config
    tasks = build_tasks(cfg)
    model = build_model(cfg, tasks, load_pretrained=False)
    load_state_strictly(model, model_file.state, model_file.path, f'the model of the config ({cfg["model"]["type"]})')
    return Predictor(model, card_from_config(cfg, tasks, _scalings_from_data(cfg, tasks, data_root),
                                             identify_backbone=False), device)


def load_model(path: PathLike, config: Union[PathLike, Mapping, None] = None, **options) -> nn.Module:
    """The trained ``nn.Module`` of a checkpoint or export, in eval mode on ``device``: ``model(x, task)`` in
    the model range. The arguments are :func:`load_predictor`'s, whose ``Predictor`` adds the card and
    forecasts in physical units."""
    return load_predictor(path, config, **options).model


def _scalings_from_data(cfg: Mapping, tasks, data_root: Optional[str]) -> dict[str, Scaling]:
    """Each task's scaling, from the config's test datasets under ``data_root``."""
    datamodule = build_datamodule(cfg, tasks, data_root)
    datamodule.check_available(('test',))
    return datamodule_scalings(datamodule, [t.name for t in tasks])
