import pytest

from openstl_unistd.errors import UserKeyError, UserTypeError
from openstl_unistd.engine.cli import run_tool

from .tools import DEMO, run


def test_user_errors_print_one_line_and_exit_2(capsys):
    def fails(argv):
        raise ValueError("task 'rain': bad value")

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
    assert err.startswith("error: --cfg-options: key(s) ['optimm.lr'] do not exist in ")


@pytest.mark.parametrize('kind', [KeyError, TypeError])
def test_an_unmarked_key_or_type_error_is_a_bug_and_keeps_its_traceback(capsys, kind):
    def lookup_deep_inside(argv):
        return {}['scalings'] if kind is KeyError else len(3)

    assert run_tool(lookup_deep_inside, []) == 1
    err = capsys.readouterr().err
    assert err.startswith('Traceback (most recent call last):')
    assert 'in lookup_deep_inside' in err and f'{kind.__name__}: ' in err
    last = err.rstrip().splitlines()[-1]
    assert last == ("error: scalings" if kind is KeyError else "error: object of type 'int' has no len()")


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_debug_re_raises_a_user_error_and_main_never_sees_the_flag(capsys, monkeypatch, how):
    seen = []

    def fails(argv):
        seen.append(argv)
        raise ValueError("task 'rain': bad value")

    if how == 'env':
        monkeypatch.setenv('UNISTD_DEBUG', '1')
    with pytest.raises(ValueError, match="task 'rain': bad value"):
        run_tool(fails, ['--ckpt', 'x.ckpt', '--debug'] if how == 'flag' else ['--ckpt', 'x.ckpt'])
    assert seen == [['--ckpt', 'x.ckpt']]
    assert capsys.readouterr().err == ''


def test_debug_off_with_unistd_debug_0(capsys, monkeypatch):
    monkeypatch.setenv('UNISTD_DEBUG', '0')

    def fails(argv):
        raise ValueError('bad')

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == 'error: bad\n'


def test_an_error_from_a_dataloader_worker_prints_only_its_own_message(capsys):
    def fails(argv):  # how torch re-raises an exception of a DataLoader worker process
        raise ValueError("Caught NonFiniteError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                         "call last):\n  File \"x.py\", line 1, in f\nopenstl_unistd.datasets.checks.NonFiniteError: "
                         "task 'rain', split 'train', sample 5: frames hold 1 NaN\n")

    assert run_tool(fails, []) == 2
    assert capsys.readouterr().err == "error: task 'rain', split 'train', sample 5: frames hold 1 NaN\n"
