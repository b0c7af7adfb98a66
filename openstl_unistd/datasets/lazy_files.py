"""File handles opened lazily, once per process: DataLoader workers must not share HDF5 handles."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np

from .checks import load_npy, open_hdf5


class PerProcessFiles:
    """A cache ``key → open file`` that is emptied in every new process and never pickled.

    A dataset keeps one of these and calls ``get(path)`` in ``__getitem__``: the main process and
    each worker open their own handle on first use. At most ``max_open`` handles stay open; the
    least recently used one is closed beyond that (Traffic4Cast alone lists 1280 day files, more
    than a common limit of 1024 open files).
    """

    def __init__(self, opener: Callable[[Hashable], Any], max_open: int = 64) -> None:
        self._opener = opener
        self._max_open = max_open
        self._pid = None
        self._files: OrderedDict = OrderedDict()

    def get(self, key: Hashable):
        if self._pid != os.getpid():
            self._files = OrderedDict()
            self._pid = os.getpid()
        if key in self._files:
            self._files.move_to_end(key)
            return self._files[key]
        handle = self._opener(key)
        self._files[key] = handle
        if len(self._files) > self._max_open:
            _, oldest = self._files.popitem(last=False)
            close = getattr(oldest, 'close', None)
            if close is not None:
                close()
        return handle

    def __getstate__(self) -> dict:
        return {'_opener': self._opener, '_max_open': self._max_open, '_pid': None, '_files': OrderedDict()}


def open_h5(path):
    """Opener of HDF5 files, read-only (an error naming the file if it is not readable HDF5)."""
    return open_hdf5(path)


def open_npy(path) -> np.ndarray:
    """Opener of ``.npy`` arrays as read-only memory maps: workers map the file, never copy it."""
    return load_npy(path, mmap=True)


def open_binary(path):
    """Opener of raw binary files (TFRecords)."""
    return open(path, 'rb')
