"""Error types that mark an error as the user's (bad config, option or input), not a bug.

The command-line tools print such an error as one line (``error: <message>``, exit status 2); a
``KeyError`` or ``TypeError`` without the mark is taken for a bug and keeps its traceback
(:func:`openstl_unistd.engine.cli.run_tool`).
"""


class UserError(Exception):
    """Mark of an error caused by the user's input; mixed into the built-in error types below."""


class UserKeyError(UserError, KeyError):
    """A config key or option that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class UserTypeError(UserError, TypeError):
    """A config or input value of the wrong kind."""


def check_known_keys(given, known, where: str) -> None:
    """A :class:`UserKeyError` ``'<where>: unknown key(s) [...]; valid keys: [...]'`` when ``given`` holds
    keys ``known`` lacks: the one check behind every config section and options schema."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserKeyError(f'{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}')
