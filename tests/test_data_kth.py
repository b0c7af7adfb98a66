import numpy as np
import pytest
import torch
from PIL import Image

from openstl_unistd.datasets.fixtures.kth import write_kth
from openstl_unistd.datasets.kth import KTH, kth_window_starts
from openstl_unistd.datasets.registry import build_dataset
from openstl_unistd.tasks import PAPER_TASKS

from .physical_values import denormalize

TRAIN_WINDOWS = [('boxing/person01_boxing_d1_uncomp', 6), ('boxing/person01_boxing_d1_uncomp', 26),
                 ('handwaving/person16_handwaving_d3_uncomp', 11),
                 ('running/person02_running_d2_uncomp', 3), ('running/person02_running_d2_uncomp', 6)]
TEST_WINDOWS = [('walking/person17_walking_d1_uncomp', 2), ('walking/person17_walking_d1_uncomp', 22),
                ('jogging/person25_jogging_d4_uncomp', 2), ('jogging/person25_jogging_d4_uncomp', 5)]
"""(video, number of its first frame) of every 10 + 10 window of the default fixture."""


def grey_of(path):
    """The first channel of a jpg as Pillow decodes it, float32 — what OpenSTL reads."""
    with Image.open(path) as image:
        return np.asarray(image)[..., 0].astype(np.float32)


def window_files(root, video, first):
    return [root / 'kth' / video / f'image_{first + k:04d}.jpg' for k in range(20)]


def test_window_starts_follow_openstl_backward_scan():
    assert kth_window_starts(range(1, 46), window=20, stride=20) == [5, 25]
    assert kth_window_starts(range(1, 26), window=20, stride=3) == [2, 5]
    assert kth_window_starts(range(1, 20), window=20, stride=3) == []
    gapped = list(range(1, 31)) + list(range(32, 46))  # frame 31 missing: no window may span it
    assert kth_window_starts(gapped, window=20, stride=20) == [10]
    assert kth_window_starts(gapped, window=10, stride=10) == [0, 10, 20, 34]


def test_windows_and_persons_of_each_split(tmp_path):
    write_kth(tmp_path)
    for split, expected in (('train', TRAIN_WINDOWS), ('val', TEST_WINDOWS), ('test', TEST_WINDOWS)):
        dataset = KTH(tmp_path, split)
        assert len(dataset) == len(expected)
        found = []
        for index in range(len(dataset)):
            paths = dataset.frame_paths(index)
            found.append((paths[0].parent.relative_to(tmp_path / 'kth').as_posix(), int(paths[0].stem[6:])))
            assert paths == window_files(tmp_path, *found[-1])
        assert found == expected
        persons = {int(video.split('/')[1][6:8]) for video, _ in found}
        assert persons <= (set(range(1, 17)) if split == 'train' else set(range(17, 26)))


def test_stride_grows_with_the_window_for_slow_actions_only(tmp_path):
    write_kth(tmp_path)
    dataset = KTH(tmp_path, 'train', input_frames=5, output_frames=5)
    assert len(dataset) == 4 + 4 + 6  # boxing every 10, handwaving around the gap, running every 3
    x, y = dataset[0]
    assert x.shape == (5, 1, 128, 128) and y.shape == (5, 1, 128, 128)


def test_frames_are_the_first_jpg_channel_resized_like_opencv(tmp_path):
    cv2 = pytest.importorskip('cv2')
    write_kth(tmp_path)  # 160 × 120 jpgs, KTH's own size
    dataset = KTH(tmp_path, 'test')
    for index in (1, 3):
        x, y = dataset[index]
        assert x.shape == (10, 1, 128, 128) and y.shape == (10, 1, 128, 128) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
        expected = np.stack([cv2.resize(grey_of(p), (128, 128)) for p in window_files(tmp_path, *TEST_WINDOWS[index])])
        values = denormalize(dataset, torch.cat([x, y]).numpy())[:, 0]
        np.testing.assert_allclose(values, expected, atol=1e-3)


def test_jpgs_of_model_size_are_read_unchanged_and_lazily(tmp_path):
    written = write_kth(tmp_path, videos={(3, 'boxing', 1): 20, (20, 'running', 1): 20}, size=(128, 128))
    dataset = KTH(tmp_path, 'train')
    assert len(dataset) == 1
    paths = window_files(tmp_path, 'boxing/person03_boxing_d1_uncomp', 1)
    x, y = dataset[0]
    np.testing.assert_allclose(denormalize(dataset, x.numpy())[:, 0], np.stack([grey_of(p) for p in paths[:10]]), atol=1e-3)
    np.testing.assert_allclose(y.numpy()[:, 0] * 255, np.stack([grey_of(p) for p in paths[10:]]), atol=1e-3)
    assert np.abs(x.numpy()[0, 0] * 255 - written[paths[0].relative_to(tmp_path).as_posix()][..., 0]).mean() < 3
    Image.fromarray(np.full((128, 128, 3), (60, 160, 240), np.uint8)).save(paths[3])
    np.testing.assert_allclose(dataset[0][0][3].numpy() * 255, 60, atol=3)  # read when asked; red, not luma


def test_registry_builds_from_the_task_spec(tmp_path):
    write_kth(tmp_path)
    dataset = build_dataset(PAPER_TASKS['kth'], 'test', tmp_path)
    assert isinstance(dataset, KTH) and len(dataset) == len(TEST_WINDOWS)
    assert dataset[0][0].shape == (10, 1, 128, 128) and dataset[0][1].shape == (10, 1, 128, 128)


def test_missing_folders_name_the_path_and_the_prepare_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'kth not found.*tools/prepare_data/download_kth.sh'):
        KTH(tmp_path, 'train')
    write_kth(tmp_path, videos={(1, 'boxing', 1): 20})
    (tmp_path / 'kth/handclapping').rmdir()
    with pytest.raises(FileNotFoundError, match=r'kth/handclapping not found.*download_kth.sh'):
        KTH(tmp_path, 'train')


def test_unexpected_names_and_empty_splits_are_reported(tmp_path):
    write_kth(tmp_path, videos={(1, 'boxing', 1): 20})
    with pytest.raises(ValueError, match=r'no window of 20 consecutive frames of persons 17–25 under .*kth'):
        KTH(tmp_path, 'test')
    (tmp_path / 'kth/boxing/person01_boxing_d1_uncomp/image_21.png').write_bytes(b'')
    with pytest.raises(ValueError, match=r'person01_boxing_d1_uncomp/image_21.png: unexpected frame name, expected image_NNNN.jpg'):
        KTH(tmp_path, 'train')
    (tmp_path / 'kth/walking/p17_walking').mkdir()
    with pytest.raises(ValueError, match=r'walking/p17_walking: unexpected folder name, expected personXX_walking_dY_uncomp'):
        KTH(tmp_path, 'test')
