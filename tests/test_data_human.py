import numpy as np
import pytest
import torch
from PIL import Image

from openstl_unistd.datasets.fixtures.human import write_human
from openstl_unistd.datasets.human import Human36M
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize


def rgb_of(path):
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB')).astype(np.float32)


def sample_files(root, prefix, start, count=8, step=5):
    return [root / 'human' / f'{prefix}{start + k * step:06d}.jpg' for k in range(count)]


def test_train_list_samples_every_fifth_frame_in_model_range(tmp_path):
    written = write_human(tmp_path)
    dataset = Human36M(tmp_path, 'train')
    assert len(dataset) == 3
    x, y = dataset[1]
    assert x.shape == (4, 3, 256, 256) and y.shape == (4, 3, 256, 256) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    files = sample_files(tmp_path, 'images/S1_Directions.54138969_', 51)
    assert files[0].name == 'S1_Directions.54138969_000051.jpg' and files[-1].name == 'S1_Directions.54138969_000086.jpg'
    expected = np.stack([rgb_of(p) for p in files]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(denormalize(dataset, x.numpy()), expected[:4], atol=1e-3)
    np.testing.assert_allclose(y.numpy() * 255, expected[4:], atol=1e-3)
    np.testing.assert_allclose(dataset[0][1][1].numpy(), x[0].numpy())  # frame 51 is in samples 0 and 1
    pre_compression = written[files[0].relative_to(tmp_path).as_posix()].transpose(2, 0, 1)
    assert np.abs(x[0].numpy() * 255 - pre_compression).mean() < 3  # channel order as stored: RGB


def test_val_and_test_read_the_test_list(tmp_path):
    write_human(tmp_path)
    for split in ('val', 'test'):
        dataset = Human36M(tmp_path, split)
        assert len(dataset) == 2
        files = sample_files(tmp_path, 'images/S11_Walking.60457274_', 1621)
        assert dataset.frame_paths(1) == files
        frames = denormalize(dataset, torch.cat(dataset[1]).numpy())
        np.testing.assert_allclose(frames, np.stack([rgb_of(p) for p in files]).transpose(0, 3, 1, 2), atol=1e-3)


def test_step_and_horizons_choose_the_frames(tmp_path):
    prefix = 'images/S7_Eating.54138969_'
    write_human(tmp_path, samples={'train': [(prefix, 10)]}, frames=8, step=1)
    x, y = Human36M(tmp_path, 'train', input_frames=3, output_frames=5, step=1)[0]
    assert x.shape == (3, 3, 256, 256) and y.shape == (5, 3, 256, 256)
    files = sample_files(tmp_path, prefix, 10, step=1)
    np.testing.assert_allclose(y.numpy()[1] * 255, rgb_of(files[4]).transpose(2, 0, 1), atol=1e-3)
    with pytest.raises(FileNotFoundError, match=r'S7_Eating.54138969_000020.jpg not found.*download_human.sh'):
        Human36M(tmp_path, 'train', step=5)[0]


def test_jpgs_of_another_size_are_resized_like_opencv_bicubic(tmp_path):
    cv2 = pytest.importorskip('cv2')
    prefix = 'images/S1_Greeting.54138969_'
    write_human(tmp_path, samples={'test': [(prefix, 1)]}, size=(1000, 1000))  # Human3.6M's own size
    x, y = Human36M(tmp_path, 'test')[0]
    assert x.shape == (4, 3, 256, 256) and y.shape == (4, 3, 256, 256)
    expected = np.stack([cv2.resize(rgb_of(p).astype(np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
                         for p in sample_files(tmp_path, prefix, 1)]).transpose(0, 3, 1, 2)
    difference = np.abs(torch.cat([x, y]).numpy() * 255 - expected)
    assert difference.max() <= 1 + 1e-3 and (difference > 1e-3).mean() < 1e-3


def test_registry_builds_from_the_task_spec(tmp_path):
    write_human(tmp_path)
    dataset = build_dataset(PAPER_TASKS['human'], 'test', tmp_path, dict(step=5))
    assert isinstance(dataset, Human36M) and len(dataset) == 2
    assert dataset[0][0].shape == (4, 3, 256, 256) and dataset[0][1].shape == (4, 3, 256, 256)


def test_missing_files_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'human not found.*tools/prepare_data/download_human.sh'):
        Human36M(tmp_path, 'train')
    write_human(tmp_path, samples={'test': [('images/S9_Sitting.55011271_', 1)]})
    with pytest.raises(FileNotFoundError, match=r'human/train.txt not found.*download_human.sh'):
        Human36M(tmp_path, 'train')
    (tmp_path / 'human/test.txt').write_text('images/S9_Sitting.55011271_,1,71\nimages/S9_Eating.55011271_,6,76\n')
    assert len(Human36M(tmp_path, 'test')) == 2  # only the first frame is checked at construction
    (tmp_path / 'human/images/S9_Sitting.55011271_000001.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=r'human/images/S9_Sitting.55011271_000001.jpg not found'):
        Human36M(tmp_path, 'test')


def test_malformed_lists_name_the_file_line_and_expected_format(tmp_path):
    write_human(tmp_path, samples={'test': [('images/S9_Sitting.55011271_', 1)]})
    listing = tmp_path / 'human/test.txt'
    listing.write_text('images/S9_Sitting.55011271_,1,71\n\n')
    assert len(Human36M(tmp_path, 'test')) == 1  # blank lines are skipped
    listing.write_bytes(b'images/S9_Sitting.55011271_,1,71\r\nimages/S9_Sitting.55011271_,1,71\r\n')
    assert len(Human36M(tmp_path, 'test')) == 2  # OpenSTL's lists end their lines with CRLF
    listing.write_text('images/S9_Sitting.55011271_,1,71\nimages/S9_Sitting.55011271_,12\n')
    with pytest.raises(ValueError, match=r"test.txt: line 2 is 'images/S9_Sitting.55011271_,12', "
                                         r"expected '<image prefix>,<start>,<end>'"):
        Human36M(tmp_path, 'test')
    listing.write_text('images/S9_Sitting.55011271_,one,71\n')
    with pytest.raises(ValueError, match=r'test.txt: line 1 is .*non-negative integers'):
        Human36M(tmp_path, 'test')
    listing.write_text('\n')
    with pytest.raises(ValueError, match=r'test.txt: no samples'):
        Human36M(tmp_path, 'test')
