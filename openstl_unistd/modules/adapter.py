"""The one rule for what is adapter and what is backbone (PEFT's "tuner layer", declared by type).

A tensor is an adapter's when it lies inside an :class:`Adapter` module; every other tensor of a
pretrained backbone is the backbone's. Everything else derives from that rule: which backbone
tensors train (:func:`set_backbone_trainable`: adapters always, the backbone's own weights only
with ``train_backbone``), which tensors an export holds (:func:`backbone_keys` are left out and
restored from the weights file) and the parameter breakdown (:func:`adapter_part`). A new adapter
type only subclasses :class:`Adapter`; nothing else needs to learn its name.

An adapter holds only what it trains: a frozen layer it works beside stays outside it (as
:class:`~.lora_injection.RAMoELinear` keeps ``base_layer`` next to its ``adapter``).
"""
from __future__ import annotations

from typing import ClassVar, Mapping

from torch import nn


class Adapter(nn.Module):
    """Base class of every module trained inside a frozen pretrained backbone.

    ``PARTS`` maps the names (or dotted prefixes) of a subclass's own tensors to their part in the
    parameter breakdown; tensors it does not name count as ``DEFAULT_PART``. An adapter nested in
    another (the temporal module's RA-MoE) reports its own parts.
    """

    PARTS: ClassVar[Mapping[str, str]] = {}
    DEFAULT_PART: ClassVar[str] = 'adapters'

    def part_of(self, name: str) -> str:
        """The breakdown part of this adapter's tensor ``name`` (relative to the adapter)."""
        for prefix, part in self.PARTS.items():
            if name == prefix or name.startswith(prefix + '.'):
                return part
        return self.DEFAULT_PART


def adapters(model: nn.Module) -> dict[str, Adapter]:
    """Every adapter inside ``model`` by module name, nested ones included."""
    return {name: module for name, module in model.named_modules() if isinstance(module, Adapter)}


def _owner(name: str, found: Mapping[str, Adapter]) -> str | None:
    """The name of the innermost adapter holding tensor ``name``, ``None`` outside every adapter."""
    parts = name.split('.')
    for end in range(len(parts) - 1, 0, -1):
        prefix = '.'.join(parts[:end])
        if prefix in found:
            return prefix
    return None


def is_adapter_tensor(name: str, found: Mapping[str, Adapter]) -> bool:
    """Whether tensor ``name`` (a parameter or state-dict key) lies inside one of the adapters ``found``."""
    return _owner(name, found) is not None


def adapter_part(name: str, found: Mapping[str, Adapter]) -> str | None:
    """The breakdown part of tensor ``name`` by its innermost adapter, ``None`` outside every adapter."""
    owner = _owner(name, found)
    return found[owner].part_of(name[len(owner) + 1:]) if owner is not None else None


def backbone_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the pretrained backbone: under ``model.backbone`` and inside no adapter.
    Empty for a model without a backbone (all its weights are trained)."""
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, nn.Module):
        return set()
    found = adapters(model)
    return {key for key in model.state_dict() if key.startswith('backbone.') and not is_adapter_tensor(key, found)}


def set_backbone_trainable(backbone: nn.Module, trainable: bool) -> None:
    """Freeze (or, ``trainable``, train) every parameter of ``backbone`` outside its adapters; the
    adapters' own flags (e.g. a frozen rank) are left as they are."""
    found = adapters(backbone)
    for name, parameter in backbone.named_parameters():
        if not is_adapter_tensor(name, found):
            parameter.requires_grad_(trainable)
