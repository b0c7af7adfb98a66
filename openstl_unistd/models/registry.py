"""The model types a config's or a model card's ``model.type`` names, and building one from its options.

A model type is one decorated definition, as in timm (``register_model`` / ``create_model``)::

    @register_model('UniSTD')
    class UniSTD(MultiTaskModel):
        def __init__(self, tasks, backbone='clip', ...): ...

The class (or a factory function) is built as ``create_model(model_type, tasks, **options)``. The config
rules (which ``model.type`` values are valid, which options each takes: :func:`model_arguments`), the
OpenSTL plug-in and ``load_model`` all read :data:`MODEL_TYPES`; importing this module's package
(``openstl_unistd.models``) registers the built-in types.
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable, Sequence, TypeVar

from torch import nn

from ..errors import UserKeyError
from ..tasks import TaskSpec

ModelBuilder = Callable[..., nn.Module]
Builder = TypeVar('Builder', bound=ModelBuilder)

MODEL_TYPES: dict[str, ModelBuilder] = {}
"""``model.type`` → the class or factory :func:`register_model` recorded, called with ``tasks`` and the
other options as keyword arguments."""


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: record a model class or factory under ``model.type`` ``name`` (its first argument is
    ``tasks``, every other one a model option). The definition is returned unchanged; a name already
    taken by another definition is a ``ValueError`` (two models cannot answer to one ``model.type``)."""
    def register(builder: Builder) -> Builder:
        taken = MODEL_TYPES.get(name)
        if taken is not None and taken is not builder:
            raise ValueError(f'model type {name!r} is already registered to {taken.__module__}.{taken.__qualname__}')
        MODEL_TYPES[name] = builder
        return builder

    return register


def check_model_type(model_type: object) -> ModelBuilder:
    """The class or factory of ``model_type``; a :class:`~openstl_unistd.errors.UserKeyError` naming it and
    listing the registered types otherwise."""
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        raise UserKeyError(f'model type {model_type!r} is not registered; registered model types: '
                           f'{sorted(MODEL_TYPES)}')
    return MODEL_TYPES[model_type]


def model_arguments(model_type: str) -> tuple[str, ...]:
    """The named options ``model_type`` takes (its constructor's arguments but ``tasks``), in order."""
    parameters = inspect.signature(check_model_type(model_type)).parameters.values()
    return tuple(p.name for p in parameters if p.name != 'tasks' and p.kind in
                 (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def create_model(model_type: str, tasks: Sequence[TaskSpec], /, **options) -> nn.Module:
    """The model registered as ``model_type`` for ``tasks``, built from ``options`` (copied, so the model
    never shares a mutable value with the caller's config). Positional-only, so that an option may be
    called ``model_type`` (SimVP's translator kind)."""
    builder = check_model_type(model_type)
    options = copy.deepcopy({k: (v.to_dict() if hasattr(v, 'to_dict') else v) for k, v in options.items()})
    return builder(tasks=list(tasks), **options)
