"""Run OpenSTL's own ``tools/train.py`` (or ``tools/test.py``) with UniSTD, the multi-task baselines and
our datasets registered.

    python -m openstl_unistd.openstl_train [--openstl-root DIR] -d multi_demo -m unistd --epoch 2 --ex_name demo
    python -m openstl_unistd.openstl_train --openstl-script test -d multi_demo -m unistd --ex_name demo
    python -m openstl_unistd.openstl_train --limit-train-batches 20 -d mmnist -m unistd --epoch 1 --ex_name short

``--limit-train-batches``, ``--limit-val-batches`` and ``--limit-test-batches`` (a number of batches, or a
fraction of the loader) cap each epoch as Lightning's options of those names do (OpenSTL's parser has
none; its Moving MNIST draws 10 000 training sequences per epoch). All other arguments are OpenSTL's. The clone is found from ``--openstl-root``, else the
``OPENSTL_ROOT`` environment variable, else the installed ``openstl`` package's repository (an
editable install). When one of our methods is given without ``-c`` and OpenSTL has no
``configs/<dataname>/<method>.py`` either, our default config for that method is used
(``openstl_unistd/openstl_configs/``). ``--openstl-script test`` runs ``tools/test.py`` and adds
OpenSTL's ``--test``, without which that script tests the model as initialized instead of
``<res_dir>/<ex_name>/checkpoints/best.ckpt``. A missing OpenSTL and an error in the user's input (a
key of the config, a missing weights file) are one ``error:`` line, exit status 2.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path
from typing import Optional, Sequence

CONFIGS = Path(__file__).resolve().parent / 'openstl_configs'


def find_train_script(root: Optional[str] = None, script: str = 'train') -> Path:
    """OpenSTL's ``tools/<script>.py`` (``train`` or ``test``); ``FileNotFoundError`` naming every place looked at."""
    candidates = []
    if root:
        candidates.append(Path(root))
    if os.environ.get('OPENSTL_ROOT'):
        candidates.append(Path(os.environ['OPENSTL_ROOT']))
    try:
        import openstl

        package = Path(next(iter(openstl.__path__)))
        candidates.append(package.parent)
    except (ImportError, StopIteration):
        pass
    for candidate in candidates:
        path = candidate.expanduser() / 'tools' / f'{script}.py'
        if path.is_file():
            return path
    looked = ', '.join(str(c / 'tools' / f'{script}.py') for c in candidates) or 'nowhere'
    raise FileNotFoundError(f"OpenSTL's tools/{script}.py not found (looked at: {looked}); pass --openstl-root "
                            'with the path of your OpenSTL clone or set OPENSTL_ROOT')


def openstl_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``-c <our config>`` added for our methods when no config is given or found."""
    from .openstl_plugin import _method_names

    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument('--method', '-m', default='SimVP')
    peek.add_argument('--dataname', '-d', default='mmnist')
    peek.add_argument('--config_file', '-c', default=None)
    known, _ = peek.parse_known_args(argv)
    method = known.method.lower()
    if method in _method_names() and known.config_file is None \
            and not Path('configs', known.dataname, f'{known.method}.py').is_file():
        return [*argv, '-c', str(CONFIGS / f'{method}.py')]
    return list(argv)


BATCH_LIMITS = {'train': 'PL_TRAINER_LIMIT_TRAIN_BATCHES', 'val': 'PL_TRAINER_LIMIT_VAL_BATCHES',
                'test': 'PL_TRAINER_LIMIT_TEST_BATCHES'}
"""``--limit-<split>-batches`` → the environment variable through which Lightning's ``Trainer`` (OpenSTL's
and the plug-in's CPU one alike) takes ``limit_<split>_batches``."""


def batch_limit(text: str) -> int | float:
    """A ``--limit-*-batches`` value: a whole number of batches ≥ 0, or a fraction in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value.is_integer() and value >= 0:
        return int(value)
    if 0 < value <= 1:
        return value
    raise argparse.ArgumentTypeError(f'expected a number of batches (0, 1, 2, …) or a fraction in (0, 1], got {text!r}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m openstl_unistd.openstl_train', add_help=False)
    parser.add_argument('--openstl-root', default=None)
    parser.add_argument('--openstl-script', choices=('train', 'test'), default='train')
    for split in BATCH_LIMITS:
        parser.add_argument(f'--limit-{split}-batches', type=batch_limit, default=None)
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    from . import register
    from .errors import UserError
    from .modules.pretrained import PretrainedWeightsNotFoundError

    try:
        register()
        script = find_train_script(known.openstl_root, known.openstl_script)
    except (ImportError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    for split, variable in BATCH_LIMITS.items():
        limit = getattr(known, f'limit_{split}_batches')
        if limit is not None:
            os.environ[variable] = str(limit)
    arguments = openstl_arguments(rest)
    if known.openstl_script == 'test' and '--test' not in arguments:
        arguments.append('--test')
    sys.argv = [str(script), *arguments]
    try:
        runpy.run_path(str(script), run_name='__main__')
    except (UserError, PretrainedWeightsNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
