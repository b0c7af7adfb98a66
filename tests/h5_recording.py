"""An h5py file wrapper that records every read, to check that loaders read slices, not files."""
import h5py


class RecordingFile:
    """An h5py file whose datasets record the index of every read."""

    def __init__(self, path, reads):
        self.file = h5py.File(path, 'r')
        self.reads = reads

    def __getitem__(self, key):
        return RecordingDataset(self.file[key], self.reads)


class RecordingDataset:
    def __init__(self, dataset, reads):
        self.dataset = dataset
        self.reads = reads

    def __getitem__(self, index):
        self.reads.append(index)
        return self.dataset[index]
