"""The training methods a config's ``method`` names, and building one around a model.

A method is one decorated definition, the LightningModule class that holds its training logic::

    @register_method('tau', options=DivergenceOptions)
    class TAUMethod(DivergenceTraining, L.LightningModule): ...

It is built as ``create_method(name, model, tasks, **options)``: the training options
(:class:`~.options.TrainingOptions` fields), the options of the config's ``method`` dict (the fields of
``options``) and the config sections it declares (``sections``, each handed whole as a mapping). The
config rules, the model card and the OpenSTL plug-in read the registry through :func:`registered_methods`,
which registers the built-in methods on first use (so that importing the config rules does not import
Lightning).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Callable, Mapping, Optional, Sequence, TypeVar

from torch import nn

from ..core.options import check_values
from ..errors import UserKeyError, check_known_keys
from ..tasks import TaskSpec

DEFAULT_METHOD = 'unistd'
"""The method of a config without ``method``."""

Method = TypeVar('Method', bound=type)


@dataclass(frozen=True)
class MethodEntry:
    """What :func:`register_method` recorded about one method.

    Attributes:
        name: the config's ``method`` (or ``method.type``).
        method_class: the LightningModule, ``method_class(model, tasks, **options)``.
        options: the keys the config's ``method`` dict takes besides ``type``.
        options_class: the dataclass declaring them (their defaults and value rules), or ``None``.
        sections: config sections handed to ``method_class`` whole, each as the keyword of its name.
        model_types: the model types (``model.type``) it trains; ``None``: any.
    """

    name: str
    method_class: type
    options: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    model_types: Optional[tuple[str, ...]] = None
    options_class: Optional[type] = None

    @property
    def training(self) -> tuple[type, ...]:
        """The training mixins of :attr:`method_class` (its bases but the LightningModule), which the OpenSTL
        plug-in puts on OpenSTL's own LightningModule."""
        import lightning as L

        return tuple(base for base in self.method_class.__bases__ if not issubclass(base, L.LightningModule))

    def check_model_type(self, model_type: object) -> None:
        """A :class:`~openstl_unistd.errors.UserKeyError` when this method does not train ``model_type``."""
        if self.model_types is not None and model_type not in self.model_types:
            raise UserKeyError(f'method {self.name!r} trains model types {list(self.model_types)}, not '
                               f'{model_type!r}')


METHODS: dict[str, MethodEntry] = {}
"""``method`` (or ``method.type``) → its :class:`MethodEntry`; read it through :func:`registered_methods`."""

BUILTIN_MODULES = ('multitask', 'unistd', 'tau')
"""The modules of this package that register the built-in methods."""


def registered_methods() -> dict[str, MethodEntry]:
    """:data:`METHODS`, the built-in methods' modules imported first (once)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(f'{__package__}.{module}')
    return METHODS


def register_method(name: str, *, options: Optional[type] = None, sections: Sequence[str] = (),
                    model_types: Optional[Sequence[str]] = None) -> Callable[[Method], Method]:
    """Decorator: record a LightningModule class as the training method ``name``.

    ``options``: the dataclass whose fields the config's ``method`` dict takes (``method=dict(type='tau',
    alpha=0.1)``), handed to the class as keyword arguments; ``sections``: config sections it reads
    (UniSTD's ``rank_search``); ``model_types``: the ``model.type`` values it trains (default: any). The
    class is returned unchanged; a name already taken by another class is a ``ValueError``.
    """
    def register(method_class: Method) -> Method:
        taken = METHODS.get(name)
        if taken is not None and taken.method_class is not method_class:
            raise ValueError(f'method {name!r} is already registered to {taken.method_class.__module__}.'
                             f'{taken.method_class.__qualname__}')
        METHODS[name] = MethodEntry(name, method_class, tuple(f.name for f in fields(options)) if options else (),
                                    tuple(sections), tuple(model_types) if model_types is not None else None,
                                    options)
        return method_class

    return register


def check_method(name: object) -> MethodEntry:
    """The entry of method ``name``; a :class:`~openstl_unistd.errors.UserKeyError` naming it and listing the
    registered methods otherwise."""
    methods = registered_methods()
    if not isinstance(name, str) or name not in methods:
        raise UserKeyError(f'method {name!r} is not registered; registered methods: {sorted(methods)}')
    return methods[name]


def method_spec(cfg: Mapping) -> tuple[str, dict]:
    """``(name, options)`` of the config's ``method`` (default :data:`DEFAULT_METHOD`), checked against the
    registry: a registered name, only the options that method takes, each within its rule."""
    method = cfg.get('method', DEFAULT_METHOD)
    options = {}
    if isinstance(method, Mapping):
        options = method.to_dict() if hasattr(method, 'to_dict') else dict(method)
        method = options.pop('type', None)
    entry = check_method(method)
    check_known_keys(options, entry.options, f"config section 'method ({method})'")
    if entry.options_class is not None:
        check_values(entry.options_class, options, 'method')
    return method, options


def create_method(name: str, model: nn.Module, tasks: Sequence[TaskSpec], /, **options):
    """The LightningModule of method ``name`` training ``model`` on ``tasks``; ``options``: training options,
    the method's own options and its sections (see :func:`register_method`)."""
    return check_method(name).method_class(model, list(tasks), **options)
