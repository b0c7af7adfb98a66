import pickle

from openstl_unistd.datasets.lazy_files import PerProcessFiles
from openstl_unistd.datasets.windows import window_starts

OPENED = []


def fake_open(key):
    OPENED.append(key)
    return f'handle:{key}'


def test_window_starts_fit_inside_each_sequence():
    starts = window_starts([5, 2, 7], window=3, stride=2)
    assert starts.tolist() == [[0, 0], [0, 2], [2, 0], [2, 2], [2, 4]]
    assert window_starts([2], window=3, stride=1).shape == (0, 2)


def test_per_process_files_open_once_and_are_not_pickled():
    files = PerProcessFiles(fake_open)
    assert files.get('a') == 'handle:a' and files.get('a') == 'handle:a' and OPENED == ['a']
    clone = pickle.loads(pickle.dumps(files))
    assert clone._files == {} and clone._pid is None
    assert clone.get('a') == 'handle:a' and OPENED == ['a', 'a']
