"""Run OpenSTL's own ``tools/train.py`` (or ``tools/test.py``) with UniSTD, the multi-task baselines and
our datasets registered.

    python -m openstl_unistd.openstl_train [--openstl-root DIR] -d multi_demo -m unistd --epoch 2 --ex_name demo
    python -m openstl_unistd.openstl_train --openstl-script test -d multi_demo -m unistd --ex_name demo

All other arguments are OpenSTL's. The clone is found from ``--openstl-root``, else the
``OPENSTL_ROOT`` environment variable, else the installed ``openstl`` package's repository (an
editable install). When one of our methods is given without ``-c`` and OpenSTL has no
``configs/<dataname>/<method>.py`` either, our default config for that method is used
(``openstl_unistd/openstl_configs/``). ``--openstl-script test`` runs ``tools/test.py`` and adds
OpenSTL's ``--test``, without which that script tests the model as initialized instead of
``<res_dir>/<ex_name>/checkpoints/best.ckpt``.
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


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--openstl-root', default=None)
    parser.add_argument('--openstl-script', choices=('train', 'test'), default='train')
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    from . import register

    register()
    script = find_train_script(known.openstl_root, known.openstl_script)
    arguments = openstl_arguments(rest)
    if known.openstl_script == 'test' and '--test' not in arguments:
        arguments.append('--test')
    sys.argv = [str(script), *arguments]
    runpy.run_path(str(script), run_name='__main__')


if __name__ == '__main__':
    main()
