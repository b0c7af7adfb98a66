"""The house's layers import only downward (docs/architecture.md#layers): a static check over every module."""
import ast
from pathlib import Path

import openstl_unistd

PACKAGE = Path(openstl_unistd.__file__).parent

LAYERS = {
    'errors': -1, 'tasks': 0, 'core': 1, 'modules': 2, 'models': 3, 'datasets': 3, 'methods': 4, 'inference': 5,
    'engine': 6, 'benchmarks': 7, 'openstl_plugin': 7, 'openstl_configs': 8, 'openstl_train': 8, '__init__': 9,
}
"""Rank of each top-level part of the package: a part may import parts of lower rank (or itself)."""


def part_of(module: str) -> str:
    return module.split('.')[1] if module.count('.') else '__init__'


def imported_parts(source: str, package: list[str]) -> set[str]:
    """Top-level parts of ``openstl_unistd`` that ``source``, a module of ``package`` (e.g.
    ``['openstl_unistd', 'models']``), imports, absolutely or relatively."""
    parts = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                target = base + (node.module.split('.') if node.module else [])
                names = [target + [alias.name] for alias in node.names] if len(target) == 1 else [target]
            elif node.module and node.module.split('.')[0] == 'openstl_unistd':
                names = [node.module.split('.')]
            else:
                continue
            parts.update(name[1] if len(name) > 1 else '__init__' for name in names)
        elif isinstance(node, ast.Import):
            parts.update(alias.name.split('.')[1] for alias in node.names
                         if alias.name.startswith('openstl_unistd.'))
    return {p.removesuffix('.py') for p in parts}


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if not p.name.startswith(('_', '.')) or
             p.name == '__init__.py'}
    assert parts - {'__pycache__'} <= set(LAYERS)


def test_imports_only_go_down():
    wrong = []
    for path in sorted(PACKAGE.rglob('*.py')):
        own = path.relative_to(PACKAGE).parts[0].removesuffix('.py')
        package = list(path.relative_to(PACKAGE.parent).parts[:-1])
        for part in imported_parts(path.read_text(), package):
            if part != own and part in LAYERS and LAYERS[part] >= LAYERS[own]:
                wrong.append(f'{path.relative_to(PACKAGE)} imports {part}')
    assert not wrong, wrong


def test_the_check_sees_every_form_of_import():
    models = ['openstl_unistd', 'models']
    assert imported_parts('from ..engine.config import build_model\n', models) == {'engine'}
    assert imported_parts('from .. import tasks\n', models) == {'tasks'}
    assert imported_parts('from .base import MultiTaskModel\n', models) == {'models'}
    assert imported_parts('import openstl_unistd.methods.unistd\n', models) == {'methods'}
    assert imported_parts('from openstl_unistd.core.metrics import ForecastMetrics\n', models) == {'core'}


def config_readers(source: str) -> list[str]:
    """Functions of ``source`` that take a raw config (a parameter named ``cfg`` or ``config``) or call
    ``method_spec``, the reader of a config's method section."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            if any(a.arg in ('cfg', 'config') for a in arguments):
                found.append(node.name)
        elif isinstance(node, ast.Call) and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == 'method_spec':
            found.append('method_spec()')
    return found


def test_inference_reads_no_config():
    """docs/architecture.md#layers: ``inference/`` takes typed values; the engine reads the config. Breaks when a
    function of inference/ takes a config again (as ``card_from_config`` and ``Extension.from_config`` did)."""
    assert config_readers('def card_from_config(cfg, tasks): return method_spec(cfg)\n') == [
        'card_from_config', 'method_spec()']
    readers = {path.name: config_readers(path.read_text()) for path in sorted((PACKAGE / 'inference').glob('*.py'))}
    assert {name: found for name, found in readers.items() if found} == {}
