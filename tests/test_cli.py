from openstl_unistd.utils.cli import run_tool


def test_user_errors_print_one_line_and_exit_2(capsys):
    def fails(argv):
        raise ValueError("task 'rain': bad value")

    assert run_tool(fails) == 2
    assert capsys.readouterr().err == "error: task 'rain': bad value\n"


def test_an_error_from_a_dataloader_worker_prints_only_its_own_message(capsys):
    def fails(argv):  # how torch re-raises an exception of a DataLoader worker process
        raise ValueError("Caught NonFiniteError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                         "call last):\n  File \"x.py\", line 1, in f\nopenstl_unistd.datasets.checks.NonFiniteError: "
                         "task 'rain', split 'train', sample 5: frames hold 1 NaN\n")

    assert run_tool(fails) == 2
    assert capsys.readouterr().err == "error: task 'rain', split 'train', sample 5: frames hold 1 NaN\n"
