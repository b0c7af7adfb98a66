import pickle

import netCDF4
import numpy as np
import pytest
import xarray as xr

from openstl_unistd.datasets import enso
from openstl_unistd.core.metrics.weather import NINO34_COLUMNS, NINO34_ROWS
from openstl_unistd.datasets.enso import ENSO, fold_index
from openstl_unistd.datasets.fixtures.enso import LAT, LON, write_enso
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize

SMALL = dict(cmip6_models=2, cmip6_years=5, cmip5_models=4, cmip5_years=4)
"""Models 0, 1 are CMIP6 (84 months each), 2 … 5 CMIP5 (72 months each)."""
KEPT = slice(19, 67)  # columns of lon 95 … 330°E in the 72-column grid


def earthformer_fold(rows):
    """A model's series as Earthformer's ``fold(size=36, stride=12)`` builds it from its rows."""
    remain = (len(rows) - 1) % 3
    parts = list(rows[::3]) + ([rows[-1, 36 - 12 * remain:]] if remain else [])
    return np.concatenate(parts)


class RecordingNetCDF:
    """An xarray dataset whose variables record the indexers of every ``isel``."""

    def __init__(self, path, reads):
        self.dataset = xr.open_dataset(path, engine='netcdf4')
        self.reads = reads

    def __getitem__(self, name):
        return RecordingVariable(name, self.dataset[name], self.reads)

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dataset.close()


class RecordingVariable:
    def __init__(self, name, variable, reads):
        self.name, self.variable, self.reads = name, variable, reads

    def isel(self, **indexers):
        self.reads.append((self.name, indexers))
        return self.variable.isel(**indexers)

    def __getattr__(self, name):
        return getattr(self.variable, name)


@pytest.fixture(scope='module')
def enso_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('enso')
    return root, write_enso(root, **SMALL)


def test_split_by_model_last_cmip5_test_second_to_last_val(enso_root):
    root, _ = enso_root
    train, val, test = (ENSO(root, split, **SMALL) for split in ('train', 'val', 'test'))
    assert train.model_ids == [0, 1, 2, 3] and val.model_ids == [4] and test.model_ids == [5]
    assert train.models == [(0, 5), (5, 5), (10, 4), (14, 4)] and val.models == [(18, 4)] and test.models == [(22, 4)]
    # windows of 26 months at stride 1 over 12 · years + 24 months
    assert len(train) == 2 * (84 - 25) + 2 * (72 - 25) and len(val) == len(test) == 72 - 25
    assert test.windows[:, 1].tolist() == list(range(47))
    assert ENSO(root, 'test', stride=5, **SMALL).windows[:, 1].tolist() == list(range(0, 47, 5))


def test_samples_are_consecutive_months_of_one_model_cropped_to_95_330E(enso_root):
    root, written = enso_root
    for split in ('train', 'val', 'test'):
        dataset = ENSO(root, split, **SMALL)
        for index in (0, 17, len(dataset) - 1):
            model, start = dataset.windows[index]
            series = written['sst'][dataset.model_ids[model]][:, :, KEPT]
            x, y = dataset[index]
            assert x.shape == (12, 1, 24, 48) and y.shape == (14, 1, 24, 48) and x.dtype.is_floating_point
            assert 0 <= x.min() and x.max() <= 1
            np.testing.assert_allclose(denormalize(dataset, x.numpy())[:, 0], series[start:start + 12], atol=2e-6)
            np.testing.assert_allclose(denormalize(dataset, y.numpy())[:, 0], series[start + 12:start + 26], atol=2e-6)
            scaled = (series[start:start + 12] + 16.549121856689453) / 26.74809741973877
            np.testing.assert_allclose(x.numpy()[:, 0], scaled, atol=1e-6)


def test_months_come_from_the_rows_earthformer_folds(tmp_path):
    written = write_enso(tmp_path, overlapping=False, extra_variables=(), **SMALL)
    assert [len(earthformer_fold(np.zeros((y, 36)))) for y in (1, 2, 3, 4, 5, 151, 140)] == \
           [12 * y + 24 for y in (1, 2, 3, 4, 5, 151, 140)]
    for years in (1, 2, 3, 4, 5, 151, 140):
        rows = np.arange(years)[:, None] * 100 + np.arange(36)  # row · 100 + month
        row, month = fold_index(np.arange(12 * years + 24), years)
        np.testing.assert_array_equal(row * 100 + month, earthformer_fold(rows))
    for split in ('train', 'val', 'test'):
        dataset = ENSO(tmp_path, split, **SMALL)
        for index in range(len(dataset)):
            model, start = dataset.windows[index]
            first, years = dataset.models[model]
            series = earthformer_fold(written['sst_rows'][first:first + years])[:, :, KEPT]
            np.testing.assert_allclose(denormalize(dataset, dataset.frames(index))[:, 0], series[start:start + 26],
                                       atol=2e-6)


def test_nino34_box_is_rows_10_13_columns_19_30_of_the_crop(enso_root):
    root, written = enso_root
    dataset = ENSO(root, 'test', **SMALL)
    np.testing.assert_array_equal(dataset.lat[NINO34_ROWS], [-5, 0, 5])
    np.testing.assert_array_equal(dataset.lon[NINO34_COLUMNS], np.arange(190, 241, 5))
    assert (NINO34_ROWS, NINO34_COLUMNS) == (slice(10, 13), slice(19, 30))
    box = np.ix_(np.flatnonzero(np.abs(LAT) <= 5), np.flatnonzero((LON >= 190) & (LON <= 240)))
    x, _ = dataset[3]
    series = written['sst'][5]
    np.testing.assert_allclose(denormalize(dataset, x.numpy())[:, 0, NINO34_ROWS, NINO34_COLUMNS],
                               series[3:15][(slice(None), *box)], atol=2e-6)


def test_default_counts_give_the_paper_sample_numbers(tmp_path):
    folder = tmp_path / 'enso'
    folder.mkdir()
    with netCDF4.Dataset(folder / 'CMIP_train.nc', 'w') as f:  # real dims, no values written
        for name, size in (('year', 4645), ('month', 36), ('lat', 24), ('lon', 72)):
            f.createDimension(name, size)
        f.createVariable('lat', 'f8', ('lat',))[:] = LAT
        f.createVariable('lon', 'f8', ('lon',))[:] = LON
        f.createVariable('sst', 'f4', ('year', 'month', 'lat', 'lon'), chunksizes=(1, 36, 24, 72), fill_value=False)
    with netCDF4.Dataset(folder / 'CMIP_label.nc', 'w') as f:
        f.createDimension('year', 4645)
        f.createDimension('month', 36)
        f.createVariable('nino', 'f4', ('year', 'month'), fill_value=False)
    train, val, test = (ENSO(tmp_path, split) for split in ('train', 'val', 'test'))
    assert len(train) == 15 * (1836 - 25) + 15 * (1704 - 25) == 52350
    assert len(val) == len(test) == 1679 and test.models == [(2265 + 16 * 140, 140)]


def test_a_sample_reads_only_its_rows_and_the_kept_longitudes(enso_root, monkeypatch):
    root, _ = enso_root
    reads = []
    monkeypatch.setattr(enso, 'open_netcdf', lambda path: RecordingNetCDF(path, reads))
    dataset = ENSO(root, 'train', **SMALL)
    assert reads == []  # checking the files reads no values
    dataset[30]  # model 0 (5 rows), months 30 … 55: rows 0 (months 30 … 35) and 3 (months 36 … 55)
    ((name, indexers),) = reads
    assert name == 'sst' and indexers['lon'] == KEPT and indexers['year'].tolist() == [0, 3]
    assert all(not isinstance(v, np.ndarray) or v.size < 36 * 24 * 48 for v in vars(dataset).values())


def test_dataset_pickles_for_workers_after_reading(enso_root):
    root, _ = enso_root
    dataset = ENSO(root, 'val', **SMALL)
    x, _ = dataset[5]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dataset))[5][0].numpy(), x.numpy())


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'enso/CMIP_train.nc not found.*tools/prepare_data/download_enso.sh'):
        ENSO(tmp_path, 'train')
    write_enso(tmp_path, extra_variables=(), **SMALL)
    (tmp_path / 'enso/CMIP_label.nc').unlink()
    with pytest.raises(FileNotFoundError, match=r'enso/CMIP_label.nc not found.*download_enso.sh'):
        ENSO(tmp_path, 'train', **SMALL)


def test_wrong_variables_shapes_or_grid_name_file_key_expected_and_actual(tmp_path):
    write_enso(tmp_path, extra_variables=(), **SMALL)
    path = tmp_path / 'enso/CMIP_train.nc'
    with pytest.raises(ValueError, match=r"CMIP_train.nc: 'sst' has shape \(26, 36, 24, 72\), expected "
                                         r"\(year=15 × 151 \+ 17 × 140 = 4645, month=36, lat=24, lon=72\)"):
        ENSO(tmp_path, 'train')
    original = xr.load_dataset(path)
    original.rename({'sst': 'SST'}).to_netcdf(path)
    with pytest.raises(ValueError, match=r"CMIP_train.nc: variable 'sst' is missing; found \['SST'\]"):
        ENSO(tmp_path, 'train', **SMALL)
    original.isel(lat=slice(None, None, -1)).to_netcdf(path)
    with pytest.raises(ValueError, match=r'rows 10:13 span latitudes \[10.0, 0.0\].*expected the Niño3.4 box'):
        ENSO(tmp_path, 'train', **SMALL)
    original.isel(lon=slice(0, 60)).to_netcdf(path)
    with pytest.raises(ValueError, match=r'95–330°E must be 48 consecutive columns of lon, found 41 in lon = 0 … 295'):
        ENSO(tmp_path, 'train', **SMALL)
    original.to_netcdf(path)
    labels = tmp_path / 'enso/CMIP_label.nc'
    xr.Dataset({'nino': (('year', 'month'), np.zeros((26, 24), dtype=np.float32))}).to_netcdf(labels)
    with pytest.raises(ValueError, match=r"CMIP_label.nc: 'nino' has shape \(26, 24\), expected \(year=.*26, month=36\)"):
        ENSO(tmp_path, 'train', **SMALL)
    with pytest.raises(ValueError, match=r'need ≥ 1 CMIP6 model, ≥ 2 CMIP5 models'):
        ENSO(tmp_path, 'train', cmip5_models=1)


def test_registry_builds_from_the_task_spec_and_checks_options(enso_root):
    root, _ = enso_root
    dataset = build_dataset(PAPER_TASKS['enso'], 'test', root, SMALL)
    assert isinstance(dataset, ENSO) and len(dataset) == 47
    x, y = dataset[0]
    assert x.shape == (12, 1, 24, 48) and y.shape == (14, 1, 24, 48)
    with pytest.raises(KeyError, match=r"data options of loader 'enso': unknown key\(s\) \['models'\]"):
        build_dataset(PAPER_TASKS['enso'], 'test', root, dict(models=3))
