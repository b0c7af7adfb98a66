"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, KeyError, ValueError, TypeError)
"""Errors that report bad input (config, paths, task names, a work dir in use): shown as one message, not a
traceback, exit status 2."""

RUN_ERRORS = (FloatingPointError,)
"""Errors that stop a run for a reason it names (a non-finite loss): one message, exit status 1."""


def run_tool(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main``; a user error prints ``error: <message>`` and exits with status 2, a run
    error (:data:`RUN_ERRORS`) the same with status 1."""
    try:
        return main(argv)
    except USER_ERRORS as error:
        message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
        if message.startswith('Caught ') and 'Original Traceback' in message:
            message = message.rstrip().splitlines()[-1].split(': ', 1)[-1]  # a DataLoader worker's error, re-raised
        print(f'error: {message}', file=sys.stderr)
        return 2
    except RUN_ERRORS as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
