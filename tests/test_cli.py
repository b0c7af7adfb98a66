import subprocess
import sys

import pytest

from openstl_unistd.datasets.checks import NonFiniteError
from openstl_unistd.errors import UserKeyError, UserTypeError, UserValueError
from openstl_unistd.engine.cli import run_tool

from .tools import DEMO, ROOT, run


def test_user_errors_print_one_line_and_exit_2(capsys):
    def fails(argv):
        raise UserValueError("task 'rain': bad value")

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == "error: task 'rain': bad value\n"


@pytest.mark.parametrize('error', [UserKeyError("config section 'optim': unknown key(s) ['lrr']"),
                                   UserTypeError("config section 'optim': unknown key(s) ['lrr']")])
def test_marked_key_and_type_errors_are_user_errors(capsys, error):
    def fails(argv):
        raise error

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == "error: config section 'optim': unknown key(s) ['lrr']\n"


def test_an_unknown_option_key_of_a_tool_is_one_line_without_traceback(tmp_path, capsys):
    status, err = run('train', '-c', DEMO, '--work-dir', tmp_path / 'work', '--cfg-options', 'optimm.lr=1',
                      capsys=capsys)
    assert status == 2 and 'Traceback' not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("error: --cfg-options: unknown key(s) ['optimm.lr']; they do not exist in ")


BUGS = {KeyError: (lambda: {}['scalings'], 'scalings'),
        TypeError: (lambda: len(3), "object of type 'int' has no len()"),
        ValueError: (lambda: [int(part) for part in '1,x'.split(',')], "invalid literal for int() with base 10: 'x'")}


@pytest.mark.parametrize('kind', list(BUGS))
def test_an_unmarked_key_type_or_value_error_is_a_bug_and_keeps_its_traceback(capsys, kind):
    """Breaks when run_tool takes every ValueError for the user's: a bug deep inside would show one line, exit 2."""
    deep, message = BUGS[kind]

    def lookup_deep_inside(argv):
        return deep()

    assert run_tool(lookup_deep_inside, []) == 1
    err = capsys.readouterr().err
    assert err.startswith('Traceback (most recent call last):')
    assert 'in lookup_deep_inside' in err and f'{kind.__name__}: ' in err
    assert err.rstrip().splitlines()[-1] == f'error: {message}'


BAD_FILE = "data.datasets={'demo_digits': {'_delete_': True, 'type': 'arrays', 'path': 'bad.npy'}}"


@pytest.mark.parametrize('options, message', [
    (['--cfg-options', 'optim.lr=-1'], 'error: config key optim.lr: expected a number > 0, got -1 (int)'),
    (['--devices', 'two'], "error: --devices: expected a number of devices, 'auto' or device indices like 0,1; "
                           "got 'two'"),
    (['--cfg-options', BAD_FILE], "error: task 'demo_digits', split 'train': {tmp}/bad.npy: cannot read this .npy"),
])
def test_user_errors_raised_where_the_input_is_checked_stay_one_line(tmp_path, capsys, options, message):
    """Breaks when a check of the user's input (a config value, --devices, a data file) raises a plain
    ValueError, which run_tool takes for a bug (traceback, exit 1)."""
    (tmp_path / 'bad.npy').write_bytes(b'not an array')
    status, err = run('train', '-c', DEMO, '--work-dir', tmp_path / 'work', '--data-root', tmp_path, *options,
                      capsys=capsys)
    assert status == 2 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(message.replace('{tmp}', str(tmp_path)))


def test_a_rank_budget_out_of_range_is_one_line(tmp_path):
    """Breaks when the rank search's check of ``rank_search.budget`` (raised once the model is built, after
    Lightning's own lines) raises a plain ValueError: a traceback and exit status 1."""
    result = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), '-c', str(DEMO), '--work-dir',
                             str(tmp_path), '--data-root', str(tmp_path), '--cfg-options', 'rank_search.budget=1'],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith('error: rank_search.budget must lie in [') and errors[0].endswith('got 1')


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_debug_re_raises_a_user_error_and_main_never_sees_the_flag(capsys, monkeypatch, how):
    seen = []

    def fails(argv):
        seen.append(argv)
        raise UserValueError("task 'rain': bad value")

    if how == 'env':
        monkeypatch.setenv('UNISTD_DEBUG', '1')
    with pytest.raises(ValueError, match="task 'rain': bad value"):
        run_tool(fails, ['--ckpt', 'x.ckpt', '--debug'] if how == 'flag' else ['--ckpt', 'x.ckpt'])
    assert seen == [['--ckpt', 'x.ckpt']]
    assert capsys.readouterr().err == ''


def test_debug_off_with_unistd_debug_0(capsys, monkeypatch):
    monkeypatch.setenv('UNISTD_DEBUG', '0')

    def fails(argv):
        raise UserValueError('bad')

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == 'error: bad\n'


def test_an_error_from_a_dataloader_worker_prints_only_its_own_message(capsys):
    def fails(argv):  # how torch re-raises an exception of a DataLoader worker process: as its own type
        raise NonFiniteError("Caught NonFiniteError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                         "call last):\n  File \"x.py\", line 1, in f\nopenstl_unistd.datasets.checks.NonFiniteError: "
                         "task 'rain', split 'train', sample 5: frames hold 1 NaN\n")

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == "error: task 'rain', split 'train', sample 5: frames hold 1 NaN\n"
