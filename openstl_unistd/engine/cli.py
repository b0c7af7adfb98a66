"""Small helpers shared by the command-line tools: their error reporting and the options they share."""
from __future__ import annotations

import ast
import copy
import os
import sys
import traceback
from typing import Callable, Optional, Sequence, Union

from mmengine.config import DictAction

from ..errors import UserError, UserValueError

USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, UserError)
"""Errors that report bad input (config, paths, task names, a work dir in use): shown as one message, not a
traceback, exit status 2. A ``KeyError``, ``TypeError`` or ``ValueError`` counts only when it is marked as a
:class:`UserError` where it is raised (:mod:`openstl_unistd.errors`)."""

BUG_UNLESS_MARKED = (KeyError, TypeError, ValueError)
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
    same with status 1; a ``KeyError``/``TypeError``/``ValueError`` not marked :class:`UserError` (a bug)
    prints its traceback before that line and exits with status 1. With ``--debug`` or ``UNISTD_DEBUG=1``
    every error is re-raised.
    """
    given = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in given or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    if DEBUG_FLAG in given:
        argv = [a for a in given if a != DEBUG_FLAG]
    try:
        return main(argv)
    except USER_ERRORS + BUG_UNLESS_MARKED + RUN_ERRORS as error:
        if debug:
            raise
        bug = isinstance(error, BUG_UNLESS_MARKED) and not isinstance(error, UserError)
        if bug:
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        print(f'error: {_message(error)}', file=sys.stderr)
        return 1 if bug or isinstance(error, RUN_ERRORS) else 2


DICT_MARKS = ('dict(', '{')
"""A ``--cfg-options`` value holding one of these is read as a Python literal (:func:`option_literal`)."""


def _literal(node: ast.AST):
    """The value of a literal node; bare words are strings and ``true``/``false`` booleans, as in mmengine."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return {'true': True, 'false': False}.get(node.id.lower(), node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        return node.operand.value if isinstance(node.op, ast.UAdd) else -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(key): _literal(value) for key, value in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict' and not node.args
            and all(keyword.arg for keyword in node.keywords)):
        return {keyword.arg: _literal(keyword.value) for keyword in node.keywords}
    raise UserValueError(f'{ast.unparse(node)!r} is not a literal')


def option_literal(key: str, text: str):
    """A ``--cfg-options`` value holding dicts — ``dict(a=1, b=x)``, ``{'a': 1}``, also inside lists — read as
    data, never run: numbers, quoted strings, bare words (strings), lists, tuples and dicts only. Commas
    outside brackets make a list, as in mmengine's ``KEY=V1,V2``."""
    text = text.strip()
    try:
        node = ast.parse(text, mode='eval').body
        value = _literal(node)
    except (SyntaxError, ValueError) as error:
        reason = error.msg if isinstance(error, SyntaxError) else str(error)
        raise UserValueError(f'--cfg-options {key}: cannot read {text!r} ({reason}); a dict value is written '
                             f'dict(a=1, b=word) or "{{\'a\': 1}}", with quotes around strings that are not plain words') \
            from None
    return list(value) if isinstance(value, tuple) and not text.startswith('(') else value


class ConfigOptions(DictAction):
    """``--cfg-options KEY=VALUE ...``: mmengine's ``DictAction`` (``KEY=V``, ``KEY=V1,V2``, ``KEY=[V1,(V2,V3)]``)
    that also reads dict values (:func:`option_literal`) and names the option it cannot read."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        options = copy.copy(getattr(namespace, self.dest, None) or {})
        for item in values or []:
            key, equals, text = item.partition('=')
            if not equals or not key:
                raise UserValueError(f'--cfg-options: expected KEY=VALUE, got {item!r}')
            if any(mark in text for mark in DICT_MARKS):
                options[key] = option_literal(key, text)
                continue
            if text.count('[') != text.count(']') or text.count('(') != text.count(')'):
                raise UserValueError(f'--cfg-options {key}: cannot read {text!r} (unbalanced brackets)')
            options[key] = self._parse_iterable(text)
        setattr(namespace, self.dest, options)


Devices = Union[None, int, str, list]


def devices_option(value: Optional[str]) -> Devices:
    """``--devices``: a number of devices, ``'auto'``, or device indices like ``0,1``."""
    if value is None or value == 'auto':
        return value
    try:
        if ',' in value:
            return [int(v) for v in value.split(',') if v.strip()]
        return int(value)
    except ValueError:
        raise UserValueError(f"--devices: expected a number of devices, 'auto' or device indices like 0,1; "
                             f'got {value!r}') from None
