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


class Handle:
    def __init__(self, key):
        self.key, self.closed = key, False

    def close(self):
        self.closed = True


def test_least_recently_used_handles_are_closed_beyond_the_cap():
    files = PerProcessFiles(Handle, max_open=2)
    a, b = files.get('a'), files.get('b')
    assert files.get('a') is a          # 'a' is now the most recently used
    c = files.get('c')                  # closes 'b'
    assert b.closed and not a.closed and not c.closed
    assert files.get('b') is not b      # reopened on demand
    assert a.closed                     # 'a' was the least recently used then
