"""The model types a config's or a model card's ``model.type`` names, and building one from its options."""
from __future__ import annotations

import copy
import inspect
from typing import Mapping, Sequence

from torch import nn

from ..errors import UserKeyError, UserValueError
from ..tasks import TaskSpec
from .multitask_earthformer import MultiTaskEarthformer
from .multitask_simvp import MultiTaskSimVP
from .unistd import UniSTD

MODEL_TYPES: dict[str, type[nn.Module]] = {'UniSTD': UniSTD, 'SimVP': MultiTaskSimVP,
                                           'Earthformer': MultiTaskEarthformer}
"""``model.type`` → the class built with the other options as keyword arguments (and ``tasks``)."""


def check_model_type(model_type: object) -> type[nn.Module]:
    """The class of ``model_type``; a ``ValueError`` listing the known types otherwise."""
    if model_type not in MODEL_TYPES:
        raise UserValueError(f'model type {model_type!r} is unknown; known types: {sorted(MODEL_TYPES)}')
    return MODEL_TYPES[model_type]


def model_arguments(model_type: str) -> tuple[str, ...]:
    """The named options ``model_type`` takes (its constructor's arguments but ``tasks``), in order."""
    parameters = inspect.signature(check_model_type(model_type)).parameters.values()
    return tuple(p.name for p in parameters if p.name != 'tasks' and p.kind in
                 (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def create_model(options: Mapping, tasks: Sequence[TaskSpec], load_pretrained: bool = True) -> nn.Module:
    """The model of ``options`` (``type`` plus constructor arguments, e.g. a config's ``model``) for ``tasks``.

    With ``load_pretrained=False`` the architecture is built with random weights (e.g. to count
    parameters without the weights file).
    """
    options = copy.deepcopy({k: (v.to_dict() if hasattr(v, 'to_dict') else v) for k, v in dict(options).items()})
    if 'type' not in options:
        raise UserKeyError(f'the model options have no "type" (one of {sorted(MODEL_TYPES)})')
    model_class = check_model_type(options.pop('type'))
    if not load_pretrained and 'pretrained' in options:
        options['pretrained'] = False
    return model_class(tasks=list(tasks), **options)
