"""ICAR-ENSO 2021 climate-model SST anomalies (monthly, 5° grid), as Earthformer and PredBench read them.

Layout: ``enso/CMIP_train.nc`` (variable ``sst``, dims (year, month=36, lat=24, lon=72); also t300, ua,
va, unused) and ``enso/CMIP_label.nc`` (``nino``, dims (year, month=36)), from Tianchi's
``enso_round1_train_20210201.zip``. Row ``y`` of a model holds its months 12·y … 12·y + 35, so
consecutive rows overlap by 24 months. Rows 0–2264 are CMIP6 (15 models × 151 years), the rest
CMIP5 (17 models × 140 years).

Grid: lat −55 … 60°, lon 0 … 355° in 5° steps; longitudes 95–330°E are kept → 24 × 48. In that crop
the Niño3.4 box (5°S–5°N, 170°W–120°W) is rows 10:13 (−5, 0, 5°) and columns 19:30 (190 … 240°E),
the indices Earthformer's ``sst_to_nino`` averages over; the loader checks this against the file's
coordinates. ``CMIP_label.nc`` is checked but not read: the Niño3.4 scores compute their target from
the target SST (docs/metrics.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.metrics.weather import NINO34_COLUMNS, NINO34_ROWS
from ..errors import UserValueError
from .base import ForecastDataset, PathLike, require_path, shape_error
from .checks import check_array, open_xarray
from .lazy_files import PerProcessFiles
from .windows import window_starts

SST_MIN = -16.549121856689453
"""Earthformer's ``SST_MIN`` (the CMIP6 minimum): model range ``(x - SST_MIN) / (SST_MAX - SST_MIN)``."""
SST_MAX = 10.198975563049316
"""Earthformer's ``SST_MAX`` (the CMIP6 maximum)."""
LON_RANGE = (95.0, 330.0)
"""Longitudes kept (degrees east, inclusive), as Earthformer and PredBench crop."""
MONTHS_PER_ROW = 36
GRID = (24, 48)


def open_netcdf(path):
    """A lazily read ``xarray.Dataset`` of a netCDF file; an error naming the file if it is not readable."""
    return open_xarray(path, engine='netcdf4')


def fold_index(months: np.ndarray, years: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, month)`` in a model's ``years`` rows of 36 months of each month ``t`` of its series.

    The series has ``12 · years + 24`` months. As Earthformer's ``fold(size=36, stride=12)``: rows
    0, 3, 6, … are concatenated whole, then the last row gives the months they leave out.
    """
    months = np.asarray(months, dtype=np.int64)
    whole = MONTHS_PER_ROW * ((years - 1) // 3 + 1)
    tail = 12 * ((years - 1) % 3)
    in_whole = months < whole
    row = np.where(in_whole, 3 * (months // MONTHS_PER_ROW), years - 1)
    month = np.where(in_whole, months % MONTHS_PER_ROW, months - whole + MONTHS_PER_ROW - tail)
    return row, month


class ENSO(ForecastDataset):
    """ICAR-ENSO SST, 12 → 14 by default.

    Each climate model's rows are unfolded into one monthly series of ``12 · years + 24`` months
    (1836 for CMIP6, 1704 for CMIP5) and cut into windows of ``T + T'`` consecutive months starting
    every ``stride`` months (1, Earthformer's ``cfg.yaml`` ``train/eval_samples_gap`` and PredBench;
    52350 train / 1679 test windows with the real model counts). Models are listed CMIP6 first.
    Split by model as Earthformer: train = all CMIP6 + CMIP5 models but the last two, val = the
    second-to-last CMIP5 model, test = the last one. Model counts and years per model are
    arguments so that small files can be read; the defaults are the real ones.

    Each sample reads only the rows it needs (xarray over netCDF4, one handle per process).
    Model range ``(x + 16.549) / 26.748`` (Earthformer's ``scale_sst``).
    """

    task = 'enso'
    prepare_script = 'download_enso.sh'
    frame_shape = (1, 24, 48)
    mean = SST_MIN
    std = SST_MAX - SST_MIN

    def __init__(self, data_root: PathLike, split: str, input_frames: int = 12, output_frames: int = 14,
                 stride: int = 1, cmip6_models: int = 15, cmip6_years: int = 151,
                 cmip5_models: int = 17, cmip5_years: int = 140) -> None:
        super().__init__(split, input_frames, output_frames)
        if min(cmip6_models, cmip6_years, cmip5_years) < 1 or cmip5_models < 2:
            raise UserValueError(f'enso: need ≥ 1 CMIP6 model, ≥ 2 CMIP5 models (val and test) and ≥ 1 year '
                                 f'each, got {cmip6_models} × {cmip6_years} and {cmip5_models} × {cmip5_years}')
        folder = Path(data_root) / 'enso'
        self.sst_path = self.source = str(require_path(folder / 'CMIP_train.nc', self.task, self.prepare_script))
        self.nino_path = str(require_path(folder / 'CMIP_label.nc', self.task, self.prepare_script))
        rows = cmip6_models * cmip6_years + cmip5_models * cmip5_years
        self._check_files(rows, f'{cmip6_models} × {cmip6_years} + {cmip5_models} × {cmip5_years} = {rows}')

        models = [(i * cmip6_years, cmip6_years) for i in range(cmip6_models)]
        models += [(cmip6_models * cmip6_years + i * cmip5_years, cmip5_years) for i in range(cmip5_models)]
        last = len(models) - 1
        chosen = {'train': range(last - 1), 'val': [last - 1], 'test': [last]}[self.split]
        self.models = [models[i] for i in chosen]
        """``(first row, years)`` of each model of this split."""
        self.model_ids = list(chosen)
        """Index of each of this split's models among all (CMIP6 0 … 14, then CMIP5 15 … 31)."""
        self.windows = window_starts([12 * years + 24 for _, years in self.models], self.total_frames, stride)
        self._files = PerProcessFiles(open_netcdf)

    def _check_files(self, rows: int, expected_rows: str) -> None:
        """Check variables, dims and coordinates; record the longitude crop (reads no SST values)."""
        with open_netcdf(self.sst_path) as ds:
            sst = self._variable(ds, self.sst_path, 'sst', ('year', 'month', 'lat', 'lon'))
            expected = f'(year={expected_rows}, month=36, lat=24, lon=72)'
            if sst.sizes['year'] != rows or sst.sizes['month'] != MONTHS_PER_ROW or sst.sizes['lat'] != GRID[0]:
                raise shape_error(self.sst_path, 'sst', expected, [sst.sizes[d] for d in sst.dims])
            lat = np.asarray(ds['lat'].values, dtype=np.float64) if 'lat' in ds.coords else None
            lon = np.asarray(ds['lon'].values, dtype=np.float64) if 'lon' in ds.coords else None
        if lat is None or lon is None:
            raise UserValueError(f'{self.sst_path}: coordinates lat and lon are needed to crop longitudes '
                                 f'{LON_RANGE[0]:g}–{LON_RANGE[1]:g}°E')
        keep = np.flatnonzero((lon >= LON_RANGE[0]) & (lon <= LON_RANGE[1]))
        if len(keep) != GRID[1] or np.any(np.diff(keep) != 1):
            raise UserValueError(f'{self.sst_path}: longitudes {LON_RANGE[0]:g}–{LON_RANGE[1]:g}°E must be {GRID[1]} '
                                 f'consecutive columns of lon, found {len(keep)} in lon = {lon[0]:g} … {lon[-1]:g} '
                                 f'({len(lon)} values)')
        self.lon_columns = slice(int(keep[0]), int(keep[-1]) + 1)
        self.lat = lat
        """Latitudes of the 24 rows (degrees north)."""
        self.lon = lon[self.lon_columns]
        """Longitudes of the 48 kept columns (degrees east)."""
        box_lat = self.lat[NINO34_ROWS][[0, -1]]
        box_lon = self.lon[NINO34_COLUMNS][[0, -1]]
        if not (np.allclose(box_lat, [-5, 5]) and np.allclose(box_lon, [190, 240])):
            raise UserValueError(f'{self.sst_path}: rows 10:13 span latitudes {box_lat.tolist()} and cropped columns '
                                 f'19:30 span longitudes {box_lon.tolist()}; expected the Niño3.4 box [-5, 5]°N × '
                                 '[190, 240]°E (lat −55 … 60° and lon 0 … 355° ascending in 5° steps)')
        with open_netcdf(self.nino_path) as ds:
            nino = self._variable(ds, self.nino_path, 'nino', ('year', 'month'))
            if nino.sizes['year'] != rows or nino.sizes['month'] != MONTHS_PER_ROW:
                raise shape_error(self.nino_path, 'nino', f'(year={expected_rows}, month=36)',
                                  [nino.sizes[d] for d in nino.dims])

    @staticmethod
    def _variable(ds, path: str, name: str, dims: tuple[str, ...]):
        if name not in ds.data_vars:
            raise UserValueError(f'{path}: variable {name!r} is missing; found {sorted(ds.data_vars)}')
        variable = ds[name]
        if set(variable.dims) != set(dims):
            raise UserValueError(f'{path}: {name!r} has dims {variable.dims}, expected {dims}')
        check_array(path, name, variable)
        return variable

    def __len__(self) -> int:
        return len(self.windows)

    def _months(self, index: int, offset: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows to read (sorted, unique), and per month its position in them and its month of the row."""
        model, start = self.windows[index]
        first_row, years = self.models[model]
        row, month = fold_index(np.arange(start + offset, start + offset + count), years)
        rows, position = np.unique(row + first_row, return_inverse=True)
        return rows, position, month

    def frames(self, index: int) -> np.ndarray:
        """``(T + T', 1, 24, 48)`` float32 model-range SST of window ``index``."""
        rows, position, month = self._months(index, 0, self.total_frames)
        sst = self._files.get(self.sst_path)['sst']
        block = sst.isel(year=rows, lon=self.lon_columns).transpose('year', 'month', 'lat', 'lon').values
        values = block[position, month][:, None]
        return ((values - self.mean) / self.std).astype(np.float32)

    def sample_source(self, index: int) -> str:
        rows, _, _ = self._months(index, 0, self.total_frames)
        return f"{self.sst_path}, 'sst' year rows {rows.tolist()}"
