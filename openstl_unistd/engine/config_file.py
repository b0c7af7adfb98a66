"""Reading a config file with mmengine, its mistakes named by file and line.

A config is Python that mmengine runs (docs/training.md, "Trust"). Before it does, the chain of
``_base_`` files is walked here: a syntax error, a missing base file or a cycle of bases (which
sends mmengine into endless recursion) is named by file. An error raised while a file runs (a
``NameError``, a failed merge into a base) is named by the file and line it came from.
"""
from __future__ import annotations

import ast
import os
import traceback
from pathlib import Path
from typing import Optional

from ..errors import UserValueError

BASE_KEY = '_base_'


def _normal(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def _syntax_tree(path: str) -> ast.Module:
    try:
        return ast.parse(Path(path).read_text(encoding='utf-8'), filename=path)
    except SyntaxError as error:
        raise UserValueError(f'config {path!r}, line {error.lineno}: SyntaxError: {error.msg}') from None


def base_files(path: str) -> list[str]:
    """The ``_base_`` files that config ``path`` names, as mmengine resolves them (relative to its folder);
    package (``pkg::...``) and templated (``{{...}}``) bases are left to mmengine."""
    bases = []
    for node in _syntax_tree(path).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise UserValueError(f'config {path!r}, line {node.lineno}: {BASE_KEY} must be a file name or a list '
                                     f'of file names, got {ast.unparse(node.value)}') from None
            bases = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
            if bases is None or not all(isinstance(b, str) for b in bases):
                raise UserValueError(f'config {path!r}, line {node.lineno}: {BASE_KEY} must be a file name or a list '
                                     f'of file names, got {value!r}')
    return [_normal(os.path.join(os.path.dirname(path), base)) for base in bases if '::' not in base and '{{' not in base]


def config_chain(path: str | Path) -> list[str]:
    """Every file of config ``path`` and of its ``_base_`` files, each once (``path`` first), after checking
    that each parses, exists and that no file is its own base."""
    given = str(path)
    seen: list[str] = []

    def walk(file: str, stack: tuple[str, ...]) -> None:
        if file in stack:
            cycle = ' → '.join((*stack[stack.index(file):], file))
            raise UserValueError(f'config {given!r}: its {BASE_KEY} files form a cycle: {cycle}')
        if file in seen:
            return
        seen.append(file)
        for base in base_files(file):
            if not os.path.isfile(base):
                raise FileNotFoundError(f'config {file if stack else given!r}: {BASE_KEY} file {base!r} not found')
            walk(base, (*stack, file))

    walk(_normal(path), ())
    return seen


def _raised_in(error: BaseException, files: list[str]) -> Optional[tuple[str, int]]:
    """``(file, line)`` of the innermost traceback frame of ``error`` that runs one of ``files``."""
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if _normal(frame.filename) in files:
            found = (_normal(frame.filename), frame.lineno)
    return found


def read_config_file(path: str | Path):
    """mmengine's ``Config`` of file ``path``: a missing file, a bad ``_base_`` chain, a syntax error or an
    error raised while a file runs is a ``ValueError`` (``FileNotFoundError``) naming the file (and line)."""
    from mmengine.config import Config

    if not Path(path).is_file():
        raise FileNotFoundError(f'config file {str(path)!r} not found')
    files = config_chain(path)
    try:
        return Config.fromfile(str(path))
    except Exception as error:
        where = _raised_in(error, files)
        if where is not None:
            raise UserValueError(f'config {where[0]!r}, line {where[1]}: {type(error).__name__}: {error}') from error
        if isinstance(error, (KeyError, TypeError)):  # mmengine's merge of a child into its _base_
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise UserValueError(f'config {str(path)!r}: {message}') from error
        raise
