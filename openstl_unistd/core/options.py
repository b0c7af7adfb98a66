"""Options declared once: one dataclass field per config key, with its default, its rule and its description.

Every config section is a dataclass of :func:`option` fields (``methods/options.py``, ``datasets/options.py``,
``engine/config_keys.py``); the keys a section accepts, the values it accepts and the key's row in
docs/training.md's table are all read from those fields.
"""
from __future__ import annotations

import copy
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, Optional

from ..errors import UserValueError


@dataclass(frozen=True)
class Rule:
    """A check of a config value: ``test(value)`` holds for the values accepted, which ``expected`` names."""

    test: Callable[[Any], bool]
    expected: str


def number(low: float = float('-inf'), strict: bool = False, optional: bool = False, integer: bool = False) -> Rule:
    """A number (an integer with ``integer``) ``≥ low`` (``> low`` with ``strict``), or ``None`` with ``optional``."""
    kind = 'an integer' if integer else 'a number'
    bound = '' if low == float('-inf') else f' {">" if strict else "≥"} {low:g}'

    def test(value) -> bool:
        if value is None:
            return optional
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            return False
        return value > low if strict else value >= low

    return Rule(test, f'{kind}{bound}{" or None" if optional else ""}')


def one_of(*choices: str) -> Rule:
    """One of the strings ``choices``."""
    return Rule(lambda value: isinstance(value, str) and value in choices,
                ' or '.join(', '.join(map(repr, choices)).rsplit(', ', 1)))


FLAG = Rule(lambda value: isinstance(value, bool), 'True or False')
FLAG_OR_NONE = Rule(lambda value: value is None or isinstance(value, bool), 'True, False or None')


def option(default: Any = None, doc: Optional[str] = None, rule: Optional[Rule] = None, shown: Optional[str] = None,
           section: Any = MISSING) -> Field:
    """A dataclass field for one config key.

    Args:
        default: its value when the config does not set it (a list or dict is copied for each instance).
        doc: what it does, its row in docs/training.md's key table (``None``: no row of its own).
        rule: the values a config may give it (:class:`Rule`); ``None``: any.
        shown: how that table writes the default when it is not a plain value (``"Lightning's"``).
        section: the config section that sets it, where one dataclass serves several (``None``: set by the
            run, not by a config).
    """
    metadata = {'doc': doc, 'rule': rule, 'shown': shown}
    if section is not MISSING:
        metadata['section'] = section
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section_fields(options: type, section: str) -> Iterator[Field]:
    """The fields of dataclass ``options`` that config section ``section`` sets."""
    return (f for f in fields(options) if f.metadata.get('section', section) == section)


def section_keys(options: type, section: str) -> tuple[str, ...]:
    """The keys config section ``section`` accepts: the names of its fields in ``options``."""
    return tuple(f.name for f in section_fields(options, section))


def value_rules(options: type, section: str, prefix: Optional[str] = None) -> dict[str, Rule]:
    """``{'<prefix>.<key>': rule}`` of the fields of ``section`` that have a rule (``prefix``: ``section``;
    ``''`` for top-level keys)."""
    prefix = section if prefix is None else prefix
    return {f'{prefix}.{f.name}' if prefix else f.name: f.metadata['rule']
            for f in section_fields(options, section) if f.metadata.get('rule')}


def check_values(options: type, values: Mapping, section: str, prefix: Optional[str] = None) -> None:
    """A :class:`~openstl_unistd.errors.UserValueError` ``'config key <key>: expected ..., got ...'`` for the
    first value of ``values`` that breaks its field's rule; keys without a field are left to the key check."""
    for key, rule in value_rules(options, section, prefix).items():
        leaf = key.rpartition('.')[2]
        if leaf in values and not rule.test(values[leaf]):
            value = values[leaf]
            raise UserValueError(f'config key {key}: expected {rule.expected}, got {value!r} ({type(value).__name__})')


def shown_value(value: Any) -> str:
    """A default as docs/training.md writes it: a Python literal, small floats as ``7e-4``."""
    if isinstance(value, float) and value and abs(value) < 1e-3:
        mantissa, exponent = f'{value:e}'.split('e')
        return f'{mantissa.rstrip("0").rstrip(".")}e{int(exponent)}'
    return repr(value)


def key_rows(options: type, section: str, prefix: Optional[str] = None) -> dict[str, str]:
    """``{key: '| `key` | default | description |'}``: the rows of docs/training.md's key table that the
    fields of ``section`` with a ``doc`` give."""
    prefix = section if prefix is None else prefix
    rows = {}
    for f in section_fields(options, section):
        if f.metadata.get('doc') is None:
            continue
        key = f'{prefix}.{f.name}' if prefix else f.name
        default = f.default if f.default is not MISSING else f.default_factory()
        rows[key] = f"| `{key}` | {f.metadata.get('shown') or f'`{shown_value(default)}`'} | {f.metadata['doc']} |"
    return rows
