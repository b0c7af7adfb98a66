"""Build (or refresh) a virtual environment holding a real OpenSTL and this project, for ``make test-openstl``.

    python3 tools/openstl_env.py --src ~/OpenSTL --venv .venv-openstl
    python3 tools/openstl_env.py --src OpenSTL-c74deb5.tar.gz --venv .venv-openstl

``--src`` is an OpenSTL clone (a folder with ``openstl/`` and ``tools/train.py``) or a source archive
of one (``.tar.gz``/``.tgz``, e.g. ``git archive`` output), which is unpacked into ``<venv>/src/``.
OpenSTL is installed editable (so its ``tools/`` scripts are found beside the package), with
``timm<=1.0.11`` (newer timm has no ``timm.optim.Nadam``, which OpenSTL imports), and this project
editable next to it. Nothing is reinstalled while the source, ``setup.py`` and this file are unchanged.
Standard library only: it runs before any environment exists.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENSTL_PINS = ['timm<=1.0.11']
TEST_TOOLS = ['pytest']


def fail(message: str) -> None:
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(2)


def is_clone(folder: Path) -> bool:
    return (folder / 'openstl' / '__init__.py').is_file() and (folder / 'tools' / 'train.py').is_file()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def unpack(archive: Path, into: Path) -> Path:
    """The OpenSTL clone inside ``archive``, unpacked under ``into`` (replacing an earlier unpacking)."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter='data')
    except (tarfile.TarError, OSError) as error:
        fail(f'{archive}: not a readable source archive ({error})')
    found = [folder for folder in (into, *sorted(into.iterdir())) if folder.is_dir() and is_clone(folder)]
    if not found:
        fail(f'{archive}: holds no OpenSTL source tree (expected openstl/__init__.py and tools/train.py)')
    return found[0]


def source_identity(src: Path) -> str:
    """What the environment was built from: the archive's SHA-256 or the clone's path."""
    return f'archive {file_digest(src)}' if src.is_file() else f'clone {src.resolve()}'


def wanted_stamp(src: Path) -> str:
    own = '\n'.join(f'{name} {file_digest(ROOT / name)}' for name in ('setup.py', 'tools/openstl_env.py'))
    return f'{source_identity(src)}\n{own}\n'


def pip(python: Path, *arguments: str) -> None:
    command = [str(python), '-m', 'pip', 'install', '--quiet', *arguments]
    print('+', ' '.join(command), flush=True)
    if subprocess.run(command).returncode:
        fail(f'pip install {" ".join(arguments)} failed (output above)')


def build(src: Path, target: Path) -> Path:
    """Create or refresh ``target``; returns its Python."""
    if not src.exists():
        fail(f'OPENSTL_SRC {src} does not exist (give an OpenSTL clone or a source .tar.gz)')
    if src.is_dir() and not is_clone(src):
        fail(f'OPENSTL_SRC {src} is not an OpenSTL clone (expected openstl/__init__.py and tools/train.py in it)')
    python = target / 'bin' / 'python'
    stamp = target / '.installed'
    wanted = wanted_stamp(src)
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        print(f'{target}: up to date with {src}')
        return python
    stamp.unlink(missing_ok=True)
    clone = unpack(src, target / 'src') if src.is_file() else src.resolve()
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(target)
    pip(python, '--upgrade', 'pip')
    pip(python, '-e', str(clone), *OPENSTL_PINS)
    pip(python, '-e', str(ROOT), *OPENSTL_PINS, *TEST_TOOLS)
    stamp.write_text(wanted)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--src', required=True, type=Path, help='an OpenSTL clone or a source .tar.gz of one')
    parser.add_argument('--venv', default=ROOT / '.venv-openstl', type=Path, help='the environment to build')
    arguments = parser.parse_args()
    python = build(arguments.src, arguments.venv)
    print(f'OpenSTL environment ready: {python}')


if __name__ == '__main__':
    main()
