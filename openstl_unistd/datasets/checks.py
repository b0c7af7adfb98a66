"""What loaders check as they read, and the errors that name the culprit.

Bad input stops a run with a message naming the file, key, task, split or sample and the expected
against the actual value: never a bare error from deep inside numpy, h5py or xarray, never silently
wrong output (NaN included). The checks are cheap: file openers only translate the errors of a
failed open; dtypes and shapes come from headers; values are checked one sample at a time as they
are read (:meth:`~.base.ForecastDataset.__getitem__`), or once for arrays already in memory.
Every error is a ``ValueError`` (``FileNotFoundError`` for missing files, raised elsewhere), which the
tools report as ``error: <message>``; the original exception is chained.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import UserValueError

PathLike = Union[str, Path]


class DataError(UserValueError):
    """A data file, or a value in it, that a loader cannot use."""


class UnreadableFileError(DataError):
    """A file that is truncated, corrupt, or not in the format its loader reads."""


class NonFiniteError(DataError):
    """NaN or ±Inf in what a loader read: it would turn every loss and metric into NaN."""


class EmptySplitError(DataError):
    """A split with no samples: training or evaluating on it would silently do nothing."""


READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy, h5py, zipfile and PIL raise for truncated or corrupt files."""

TRUNCATED_HINT = 'the file may be truncated (an interrupted download or copy) or not be in this format'


def is_read_error(error: BaseException) -> bool:
    """Whether ``error`` says a file could not be read (not that it is missing: that stays a FileNotFoundError)."""
    if isinstance(error, FileNotFoundError):
        return False
    # netCDF4 reports a corrupt chunk at read time as RuntimeError('NetCDF: HDF error').
    return isinstance(error, READ_ERRORS) or (isinstance(error, RuntimeError) and str(error).startswith('NetCDF:'))


def unreadable(path: PathLike, kind: str, error: BaseException, key: Optional[str] = None) -> UnreadableFileError:
    """The error for a file (or a member ``key`` of it) that ``kind``'s reader failed on."""
    what = f'{key!r} in ' if key is not None else ''
    reason = ' '.join(str(error).split())  # one line: xarray's own message spans several
    return UnreadableFileError(f'{path}: cannot read {what}this {kind} file ({type(error).__name__}: {reason}); '
                               f'{TRUNCATED_HINT}')


def load_npy(path: PathLike, mmap: bool = True) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped read-only by default; a clear error if it is unreadable."""
    try:
        array = np.load(path, mmap_mode='r' if mmap else None)
    except FileNotFoundError:
        raise
    except (ValueError, *READ_ERRORS) as error:
        raise unreadable(path, '.npy', error) from error
    if not isinstance(array, np.ndarray):
        array.close()
        raise UnreadableFileError(f'{path}: holds an .npz archive, expected one .npy array (numpy.save)')
    return array


def load_npz(path: PathLike):
    """The open archive (``numpy.lib.npyio.NpzFile``) of a ``.npz`` file; a clear error if it is unreadable."""
    try:
        archive = np.load(path)
    except FileNotFoundError:
        raise
    except (ValueError, *READ_ERRORS) as error:
        raise unreadable(path, '.npz', error) from error
    if isinstance(archive, np.ndarray):
        raise UnreadableFileError(f'{path}: holds one .npy array, expected an .npz archive (numpy.savez)')
    return archive


def npz_member(archive, path: PathLike, key: str) -> np.ndarray:
    """Array ``key`` of an open ``.npz`` archive (the caller checked that the key exists)."""
    try:
        return archive[key]
    except (ValueError, *READ_ERRORS) as error:
        raise unreadable(path, '.npz', error, key) from error


def open_hdf5(path: PathLike):
    """An ``h5py.File`` opened read-only; a clear error if the file is not readable HDF5."""
    import h5py

    try:
        return h5py.File(path, 'r')
    except FileNotFoundError:
        raise
    except OSError as error:
        raise unreadable(path, 'HDF5', error) from error


def open_xarray(path: PathLike, engine: Optional[str] = None):
    """An ``xarray.Dataset`` over a netCDF file or a zarr store (a folder or ``*.zarr``), opened lazily."""
    import xarray as xr

    path = Path(path)
    zarr = path.suffix == '.zarr' or path.is_dir()
    try:
        return xr.open_zarr(path) if zarr else xr.open_dataset(path, engine=engine)
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, *READ_ERRORS) as error:
        raise unreadable(path, 'zarr' if zarr else 'netCDF', error) from error


def read_image(path: PathLike, mode: Optional[str] = None) -> np.ndarray:
    """Pixels of an image file (converted to PIL ``mode`` if given); a clear error if it is truncated or corrupt."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode) if mode else image)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three for corrupt files
        raise unreadable(path, 'image', error) from error


REAL_KINDS = 'iuf'
"""numpy dtype kinds a loader can turn into float32 frames: signed and unsigned integers, floats (not bools:
a mask is no frame)."""
KIND_NAMES = {'b': 'booleans', 'U': 'strings', 'S': 'byte strings', 'O': 'Python objects', 'c': 'complex numbers',
              'M': 'dates', 'm': 'time spans', 'V': 'raw bytes or records'}


def check_array(path: Optional[PathLike], key: str, array) -> None:
    """Raise unless ``array`` (anything with ``dtype`` and ``shape``: numpy, h5py, xarray, torch) holds real
    numbers and is not empty. Reads the header only. ``path`` ``None``: an array in memory, named by ``key``."""
    shape = tuple(int(s) for s in array.shape)
    if isinstance(array, torch.Tensor):
        dtype = array.dtype
        kind = ('b' if dtype == torch.bool else 'c' if dtype.is_complex else 'f' if dtype.is_floating_point
                else 'i')
    else:
        dtype = np.dtype(array.dtype)
        kind = dtype.kind
    where = f'{path}: {key!r}' if path is not None else repr(key)
    if kind not in REAL_KINDS:
        raise DataError(f'{where} has dtype {dtype} ({KIND_NAMES.get(kind, kind)}), '
                        'expected real numbers (integers or floats)')
    if 0 in shape:
        raise DataError(f'{where} is empty: shape {shape}, expected at least one value along every axis')


def all_finite(values) -> bool:
    """Whether every value of a CPU tensor or array is finite: one sum (non-finite if any value is), the
    full test only if that sum is not finite. numpy's reductions run on one thread: torch's intra-op
    threads cost milliseconds per call on a busy machine, more than the sum itself."""
    array = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    with np.errstate(over='ignore', invalid='ignore'):  # an overflowing or NaN sum is the answer, not a warning
        total = float(array.sum())
    return math.isfinite(total) or bool(np.isfinite(array).all())


def describe_non_finite(values, axes: str) -> str:
    """``'3 non-finite values (2 NaN, 1 ±Inf), the first at (t, c, h, w) = (2, 0, 5, 7)'``."""
    values = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.array(values))
    bad = ~torch.isfinite(values)
    count, nan = int(bad.sum()), int(torch.isnan(values).sum())
    first = tuple(int(i) for i in bad.nonzero()[0]) if count else ()
    return f'{count} non-finite value(s) ({nan} NaN, {count - nan} ±Inf), the first at {axes} = {first}'


def non_finite_rows(array, chunk: int = 64) -> np.ndarray:
    """Indices along the first axis of the rows of ``array`` (in memory or memory-mapped, or a tensor on any
    device) that hold NaN or ±Inf: a float64 sum first, which copies nothing; rows are tested in chunks only
    if it is not finite."""
    if isinstance(array, torch.Tensor):
        if not array.is_floating_point() or not len(array):
            return np.zeros(0, dtype=np.int64)
        bad = ~torch.isfinite(array.reshape(len(array), -1)).all(dim=1)
        return bad.nonzero().flatten().cpu().numpy().astype(np.int64)
    if np.dtype(array.dtype).kind != 'f' or np.isfinite(array.sum(dtype=np.float64)):
        return np.zeros(0, dtype=np.int64)
    bad = [first + np.flatnonzero(~np.isfinite(np.asarray(array[first:first + chunk]).reshape(
        min(chunk, len(array) - first), -1)).all(axis=1)) for first in range(0, len(array), chunk)]
    return np.concatenate(bad).astype(np.int64)


def check_rows_finite(array: np.ndarray, path: Optional[PathLike], key: str, rows: str = 'sample',
                      offset: int = 0, part: str = '',
                      why: str = 'fix or remove them, they would make every loss and metric NaN') -> None:
    """Raise naming the first rows (``rows`` ``offset + i``) of ``array`` that hold NaN or ±Inf (reads it all:
    for arrays already in memory, or read once anyway). ``path`` ``None``: an array in memory, named by
    ``key``; ``part``: which part of it ``array`` is (e.g. the frames read); ``why``: what the error adds."""
    bad = non_finite_rows(array)
    if len(bad):
        where = f'{path}: {key!r}' if path is not None else repr(key)
        listed = ', '.join(str(offset + int(i)) for i in bad[:5]) + (', …' if len(bad) > 5 else '')
        raise NonFiniteError(f'{where}{part} holds NaN or ±Inf in {len(bad)} {rows}(s): {rows} {listed} '
                             f'(first: {describe_non_finite(array[int(bad[0])], "index")}); {why}')


def name_range(first: int, count: int) -> str:
    """``'12–36'`` (inclusive) for ``count`` items from ``first``."""
    return f'{first}–{first + count - 1}' if count > 1 else f'{first}'


def check_all_samples(datasets, num_workers: int = 0) -> None:
    """Read every sample of ``datasets`` (task name → dataset, e.g. a run's test split) once, so that NaN/±Inf
    or an unreadable sample stops a run before it trains rather than after: each dataset's ``__getitem__``
    raises naming the sample (``base.ForecastDataset``). Through a ``DataLoader`` with ``num_workers``
    workers and its own random generator, so the global one, which seeds the model, is left as it was."""
    from torch.utils.data import DataLoader

    for dataset in datasets.values():
        for _ in DataLoader(dataset, batch_size=None, num_workers=num_workers, generator=torch.Generator()):
            pass
