import numpy as np
import pytest

from openstl_unistd.datasets.fixtures.taxibj import write_taxibj_openstl, write_taxibj_predbench
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.datasets.taxibj import TaxiBJ
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def test_openstl_npz_reads_in_model_range_and_denormalizes_to_the_file(tmp_path):
    arrays = write_taxibj_openstl(tmp_path, train=5, test=3)
    train = TaxiBJ(tmp_path, 'train')
    assert len(train) == 5
    x, y = train[2]
    assert x.shape == (4, 2, 32, 32) and y.shape == (4, 2, 32, 32) and x.dtype.is_floating_point
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(denormalize(train, x.numpy()), arrays['X_train'][2], atol=1e-6)
    np.testing.assert_allclose(denormalize(train, y.numpy()), arrays['Y_train'][2], atol=1e-6)
    np.testing.assert_allclose(x.numpy(), (arrays['X_train'][2] + 1) / 2, atol=1e-6)
    for split in ('val', 'test'):  # OpenSTL has no validation split: val reads the test arrays
        held_out = TaxiBJ(tmp_path, split)
        assert len(held_out) == 3
        np.testing.assert_allclose(denormalize(held_out, held_out[1][1].numpy()), arrays['Y_test'][1], atol=1e-6)


def test_shorter_horizons_take_the_first_frames(tmp_path):
    arrays = write_taxibj_openstl(tmp_path)
    x, y = TaxiBJ(tmp_path, 'train', input_frames=2, output_frames=3)[0]
    sequence = np.concatenate([arrays['X_train'][0], arrays['Y_train'][0]])
    assert x.shape[0] == 2 and y.shape[0] == 3
    np.testing.assert_allclose(y.numpy() * 2 - 1, sequence[2:5], atol=1e-6)
    with pytest.raises(ValueError, match=r'sequences of 8 frames, fewer than input_frames \+ output_frames = 4 \+ 5'):
        TaxiBJ(tmp_path, 'train', output_frames=5)


def test_predbench_npy_reads_each_split_scaled_by_1250(tmp_path):
    arrays = write_taxibj_predbench(tmp_path, sizes=(4, 2, 3))
    for split, count in (('train', 4), ('val', 2), ('test', 3)):
        dataset = TaxiBJ(tmp_path, split, format='predbench')
        assert len(dataset) == count
        x, y = dataset[count - 1]
        assert 0 <= x.min() and x.max() <= 1
        np.testing.assert_allclose(x.numpy() * 1250, arrays[split][count - 1, :4], rtol=1e-6)
        np.testing.assert_allclose(denormalize(dataset, y.numpy()), arrays[split][count - 1, 4:8], rtol=1e-6)


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'taxibj/dataset.npz not found.*tools/prepare_data/download_taxibj.sh'):
        TaxiBJ(tmp_path, 'train')
    with pytest.raises(FileNotFoundError, match=r'taxibj/val.npy not found'):
        TaxiBJ(tmp_path, 'val', format='predbench')


def test_wrong_keys_or_shapes_name_file_key_and_shapes(tmp_path):
    (tmp_path / 'taxibj').mkdir()
    np.savez(tmp_path / 'taxibj/dataset.npz', X_train=np.zeros((2, 4, 2, 32, 32)))
    with pytest.raises(ValueError, match=r"dataset.npz: key 'Y_train' is missing; found \['X_train'\]"):
        TaxiBJ(tmp_path, 'train')
    np.savez(tmp_path / 'taxibj/dataset.npz', X_train=np.zeros((2, 4, 32, 32)), Y_train=np.zeros((2, 4, 2, 32, 32)))
    with pytest.raises(ValueError, match=r"dataset.npz: 'X_train' has shape \(2, 4, 32, 32\), expected \(N, T, 2, 32, 32\)"):
        TaxiBJ(tmp_path, 'train')


def test_registry_builds_from_the_task_spec_and_checks_options(tmp_path):
    write_taxibj_predbench(tmp_path)
    dataset = build_dataset(PAPER_TASKS['taxibj'], 'test', tmp_path, dict(format='predbench'))
    assert isinstance(dataset, TaxiBJ) and dataset[0][0].shape == (4, 2, 32, 32)
    with pytest.raises(KeyError, match=r"task 'taxibj': data options of loader 'taxibj': unknown key\(s\) \['fmt'\]"):
        build_dataset(PAPER_TASKS['taxibj'], 'test', tmp_path, dict(fmt='predbench'))
    with pytest.raises(ValueError, match=r"unknown format 'npy'"):
        TaxiBJ(tmp_path, 'test', format='npy')
