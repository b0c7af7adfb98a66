"""A file given as a checkpoint (--ckpt of predict, export and test) that is not one is described as what it
is, naming the file: only a pickle that asks for Python objects is called one that could execute code."""
import h5py
import numpy as np
import pytest

from openstl_unistd.inference.checkpoint_io import load_checkpoint

from .tools import DEMO, SMALL, run


def _npy(path):
    with open(path, 'wb') as handle:                        # np.save(path) would add '.npy' to other names
        np.save(handle, np.zeros((2, 3), np.float32))


def _npz(path):
    with open(path, 'wb') as handle:
        np.savez(handle, frames=np.zeros(3))


def _hdf5(path):
    with h5py.File(path, 'w') as f:
        f['array'] = np.zeros(3)


def _garbage(path):
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes())


FILES = {
    'npy': ('x.npy', _npy, 'is a NumPy .npy array, not a checkpoint'),
    'npy-as-ckpt': ('x.ckpt', _npy, 'is a NumPy .npy array, not a checkpoint'),
    'npz': ('x.npz', _npz, 'is a NumPy .npz archive, not a checkpoint'),
    'hdf5': ('x.ckpt', _hdf5, 'is an HDF5 file, not a checkpoint'),
    'text': ('x.ckpt', lambda p: p.write_text('model = dict(type="UniSTD")\n'), 'is a text file, not a checkpoint'),
    'empty': ('x.ckpt', lambda p: p.write_bytes(b''), 'is empty, not a checkpoint'),
    'garbage': ('x.ckpt', _garbage, 'is not a checkpoint (torch.load cannot read it'),
}


@pytest.mark.parametrize('kind', list(FILES))
def test_a_file_that_is_not_a_checkpoint_is_described_as_what_it_is(tmp_path, kind):
    name, write, expected = FILES[kind]
    path = tmp_path / name
    write(path)
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f'checkpoint {str(path)!r} {expected}'), message
    assert 'execute code' not in message and 'Python objects' not in message


@pytest.mark.parametrize('tool', ['predict', 'export'])
def test_predict_and_export_describe_an_array_given_as_ckpt(tmp_path, capsys, tool):
    _npy(tmp_path / 'past.npy')
    extra = ['--task', 'rain', '--input', tmp_path / 'past.npy', '--out', tmp_path / 'f.npy'] if tool == 'predict' \
        else ['--out', tmp_path / 'f.safetensors']
    status, err = run(tool, '--ckpt', tmp_path / 'past.npy', *extra, capsys=capsys)
    assert status == 2 and 'Traceback' not in err
    assert f"error: checkpoint '{tmp_path / 'past.npy'}' is a NumPy .npy array, not a checkpoint" in err


def test_the_test_tool_describes_a_garbage_ckpt(tmp_path, capsys):
    _garbage(tmp_path / 'garbage.ckpt')
    status, err = run('test', '-c', DEMO, '--ckpt', tmp_path / 'garbage.ckpt', '--work-dir', tmp_path / 'test',
                      '--data-root', tmp_path / 'data', *SMALL, capsys=capsys)
    assert status == 2 and 'Traceback' not in err and 'execute code' not in err
    assert f"error: checkpoint '{tmp_path / 'garbage.ckpt'}' is not a checkpoint" in err
