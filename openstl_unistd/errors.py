"""Error types that mark an error as the user's (bad config, option or input), not a bug.

The command-line tools print such an error as one line (``error: <message>``, exit status 2); a
``KeyError``, ``TypeError`` or ``ValueError`` without the mark is taken for a bug and keeps its traceback
(:func:`openstl_unistd.engine.cli.run_tool`). So a check of the user's input raises the marked type where it
finds the mistake, and an unexpected error from deep inside the code is never mistaken for one.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional


class UserError(Exception):
    """Mark of an error caused by the user's input; mixed into the built-in error types below."""


class UserKeyError(UserError, KeyError):
    """A config key or option that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class UserTypeError(UserError, TypeError):
    """A config or input value of the wrong kind."""


class UserValueError(UserError, ValueError):
    """A config, option or input value that is out of range, malformed or inconsistent."""


def check_known_keys(given: Iterable, known: Iterable, where: str, reasons: Optional[Mapping[str, str]] = None,
                     valid: Optional[str] = None) -> None:
    """A :class:`UserKeyError` ``'<where>: unknown key(s) [...]; valid keys: [...]'`` when ``given`` holds keys
    ``known`` lacks: the one check behind every config section, options schema, task entry and loader option.

    ``reasons``: why a key has no place here (``'<key>' is <reason>`` follows the list for each such key
    given); ``valid``: what to say of the valid keys instead of listing ``known``.
    """
    known = set(known)
    unknown = sorted(set(given) - known)
    if unknown:
        why = ''.join(f"; '{key}' is {reasons[key]}" for key in unknown if reasons and key in reasons)
        raise UserKeyError(f'{where}: unknown key(s) {unknown}{why}; {valid or f"valid keys: {sorted(known)}"}')
