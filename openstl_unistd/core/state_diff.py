"""How a file's tensors differ from a model's: the one comparison behind every weight loading.

Resuming a checkpoint, loading one for test or prediction, extending a trained model and reading
an export all compare the tensors a file holds with those a model expects, and all report the
difference the same way: how many are missing, unexpected or of another shape, with examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from ..errors import UserValueError

EXAMPLES = 3
"""Keys quoted per kind of difference."""


@dataclass(frozen=True)
class StateDiff:
    """Keys the model expects but the file lacks (``missing``), keys of the file the model does not have
    (``unexpected``), and ``(key, shape in the file, shape in the model)`` of the others that differ."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    shapes: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()

    @classmethod
    def of(cls, expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> 'StateDiff':
        """Compare ``given`` (a file's tensors) with ``expected`` (the model's)."""
        return cls(tuple(k for k in expected if k not in given),
                   tuple(k for k in given if k not in expected),
                   tuple((k, tuple(v.shape), tuple(expected[k].shape)) for k, v in given.items()
                         if k in expected and tuple(v.shape) != tuple(expected[k].shape)))

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def describe(self, file: str = 'the file') -> str:
        """``'2 missing (e.g. [...]); 1 of another shape (e.g. key: (4,) in the file, (8,) in the model)'``."""
        shaped = [f'{k}: {a} in {file}, {b} in the model' for k, a, b in self.shapes[:EXAMPLES]]
        parts = [f'{len(self.missing)} missing (e.g. {list(self.missing[:EXAMPLES])})' if self.missing else '',
                 f'{len(self.unexpected)} unexpected (e.g. {list(self.unexpected[:EXAMPLES])})'
                 if self.unexpected else '',
                 f'{len(self.shapes)} of another shape (e.g. {shaped})' if self.shapes else '']
        return '; '.join(part for part in parts if part)

    def check(self, source: object, what: str = 'the model', file: str = 'the file') -> None:
        """Raise a ``ValueError`` ``'<source>: its tensors do not fit <what>: <describe>'`` if they differ."""
        if self:
            raise UserValueError(f'{source}: its tensors do not fit {what}: {self.describe(file)}')
