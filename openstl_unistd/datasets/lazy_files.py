"""File handles opened lazily, once per process: DataLoader workers must not share HDF5 handles."""
from __future__ import annotations

import os
from typing import Any, Callable, Hashable


class PerProcessFiles:
    """A cache ``key → open file`` that is emptied in every new process and never pickled.

    A dataset keeps one of these and calls ``get(path)`` in ``__getitem__``: the main process and
    each worker open their own handle on first use.
    """

    def __init__(self, opener: Callable[[Hashable], Any]) -> None:
        self._opener = opener
        self._pid = None
        self._files: dict = {}

    def get(self, key: Hashable):
        if self._pid != os.getpid():
            self._files = {}
            self._pid = os.getpid()
        if key not in self._files:
            self._files[key] = self._opener(key)
        return self._files[key]

    def __getstate__(self) -> dict:
        return {'_opener': self._opener, '_pid': None, '_files': {}}


def open_h5(path):
    import h5py

    return h5py.File(path, 'r')
