"""The command-line tools run in this process (fast checks of their messages and exit statuses)."""
import importlib.util
from pathlib import Path

from openstl_unistd.engine.cli import run_tool

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / 'configs/unistd/demo.py')
SMALL = ['--cfg-options', 'model.backbone_kwargs.depth=1', 'model.hidden_channels=8', 'data.batch_size=2',
         'data.steps_per_epoch=2', 'trainer.max_epochs=1', 'trainer.enable_progress_bar=False',
         *[f'data.datasets.{task}.num_samples=4' for task in ('demo_digits', 'demo_advection', 'demo_traffic')]]
"""Options that keep a demo run to seconds (should a check that ought to stop it early not stop it)."""


def tool(name: str):
    spec = importlib.util.spec_from_file_location(f'{name}_tool', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, *argv: str, capsys=None) -> tuple[int, str]:
    """Exit status of ``tools/<name>.py argv`` and what it wrote to stderr."""
    status = run_tool(tool(name).main, [str(a) for a in argv])
    return status, capsys.readouterr().err if capsys is not None else ''
