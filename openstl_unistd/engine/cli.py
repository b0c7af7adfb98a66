"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Optional, Sequence

from ..errors import UserError

USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, KeyError, ValueError, TypeError, UserError)
"""Errors that report bad input (config, paths, task names, a work dir in use): shown as one message, not a
traceback, exit status 2. A ``KeyError`` or ``TypeError`` counts only when it is a :class:`UserError`."""

BUG_UNLESS_MARKED = (KeyError, TypeError)
"""Errors that are bugs unless marked as :class:`UserError`: shown with their traceback, exit status 1."""

RUN_ERRORS = (FloatingPointError,)
"""Errors that stop a run for a reason it names (a non-finite loss): one message, exit status 1."""

DEBUG_FLAG = '--debug'
DEBUG_ENV = 'UNISTD_DEBUG'
"""``--debug`` on any tool's command line, or ``UNISTD_DEBUG=1``: every error is raised with its traceback."""


def _message(error: BaseException) -> str:
    message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
    if message.startswith('Caught ') and 'Original Traceback' in message:
        message = message.rstrip().splitlines()[-1].split(': ', 1)[-1]  # a DataLoader worker's error, re-raised
    return message


def run_tool(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main`` on ``argv`` (default the command line) less ``--debug``.

    A user error prints ``error: <message>`` and exits with status 2, a run error (:data:`RUN_ERRORS`) the
    same with status 1; a ``KeyError``/``TypeError`` not marked :class:`UserError` (a bug) prints its
    traceback before that line and exits with status 1. With ``--debug`` or ``UNISTD_DEBUG=1`` every error
    is re-raised.
    """
    given = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in given or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    if DEBUG_FLAG in given:
        argv = [a for a in given if a != DEBUG_FLAG]
    try:
        return main(argv)
    except USER_ERRORS + RUN_ERRORS as error:
        if debug:
            raise
        bug = isinstance(error, BUG_UNLESS_MARKED) and not isinstance(error, UserError)
        if bug:
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        print(f'error: {_message(error)}', file=sys.stderr)
        return 1 if bug or isinstance(error, RUN_ERRORS) else 2
