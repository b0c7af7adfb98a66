"""The docs keep up with the code: every config key has a row in docs/training.md's table, and no row is stale."""
import inspect
import re
from pathlib import Path

from openstl_unistd.models.unistd import UniSTD
from openstl_unistd.engine.config import METHODS, SECTION_KEYS, TOP_LEVEL_KEYS, VALUE_RULES

ROOT = Path(__file__).resolve().parents[1]


def documented_keys(text: str) -> list[str]:
    """The first-column keys of the table under ``## Config keys``."""
    section = text.split('## Config keys\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^\| `([\w.]+)` \|', section, flags=re.MULTILINE)


def known_keys() -> set[str]:
    keys = {key for key in TOP_LEVEL_KEYS if key not in SECTION_KEYS and key != 'model'}   # model: model.*
    keys |= {f'{section}.{key}' for section, leaves in SECTION_KEYS.items() for key in leaves}
    keys |= set(VALUE_RULES)
    keys |= {'method', *(f'method.{option}' for options in METHODS.values() for option in options)}
    model = [name for name in inspect.signature(UniSTD.__init__).parameters if name not in ('self', 'tasks')]
    return keys | {'model.type', *(f'model.{name}' for name in model)}


def test_every_config_key_has_one_row_and_every_row_is_a_key():
    rows = documented_keys((ROOT / 'docs/training.md').read_text())
    assert sorted(known_keys() - set(rows)) == [], 'config keys without a row in docs/training.md'
    assert sorted(set(rows) - known_keys()) == [], 'rows of docs/training.md that name no config key'
    assert sorted({key for key in rows if rows.count(key) > 1}) == []

