"""The docs keep up with the code: every config key has a row in docs/training.md's table, and no row is stale;
nothing points outside the repository, every cited section exists, and every number the code can compute is the
code's."""
import functools
import inspect
import math
import re
import subprocess
from pathlib import Path

import torch

from openstl_unistd.models.unistd import UniSTD
from openstl_unistd.core.options import shown_value
from openstl_unistd.engine.config import SECTION_KEYS, TOP_LEVEL_KEYS, VALUE_RULES
from openstl_unistd.engine.config_keys import key_rows
from openstl_unistd.methods.registry import registered_methods
from openstl_unistd.engine.analysis import build_structure, config_with_model, multiply_accumulates
from openstl_unistd.engine.config import load_config
from openstl_unistd.benchmarks.memory import GIB, estimate_training_peaks
from openstl_unistd.benchmarks.speed import step_flops
from openstl_unistd.models.parameters import count_parameters
from openstl_unistd.modules.adapter import backbone_keys
from openstl_unistd.modules.ra_moe import initial_total_rank
from openstl_unistd.tasks import PAPER_TASKS

ROOT = Path(__file__).resolve().parents[1]


def key_table(text: str) -> str:
    """The text under ``## Config keys``."""
    return text.split('## Config keys\n', 1)[1].split('\n## ', 1)[0]


def documented_keys(text: str) -> list[str]:
    """The first-column keys of the table under ``## Config keys``."""
    return re.findall(r'^\| `([\w.]+)` \|', key_table(text), flags=re.MULTILINE)


def known_keys() -> set[str]:
    keys = {key for key in TOP_LEVEL_KEYS if key not in SECTION_KEYS and key != 'model'}   # model: model.*
    keys |= {f'{section}.{key}' for section, leaves in SECTION_KEYS.items() for key in leaves}
    keys |= set(VALUE_RULES)
    package_methods = [entry for entry in registered_methods().values()     # not those a test file registers
                       if entry.method_class.__module__.startswith('openstl_unistd.')]
    keys |= {'method', *(f'method.{option}' for entry in package_methods for option in entry.options)}
    model = [name for name in inspect.signature(UniSTD.__init__).parameters if name not in ('self', 'tasks')]
    return keys | {'model.type', *(f'model.{name}' for name in model)}


def test_every_config_key_has_one_row_and_every_row_is_a_key():
    rows = documented_keys((ROOT / 'docs/training.md').read_text())
    assert sorted(known_keys() - set(rows)) == [], 'config keys without a row in docs/training.md'
    assert sorted(set(rows) - known_keys()) == [], 'rows of docs/training.md that name no config key'
    assert sorted({key for key in rows if rows.count(key) > 1}) == []


def test_every_declared_key_has_its_row_with_the_codes_default_and_description():
    """Breaks when a key's default, its shown default or its description changes in an options dataclass
    (methods/options.py, datasets/options.py, engine/config_keys.py) and not in docs/training.md, or back."""
    rows = {re.match(r'\| `([\w.]+)` \|', line).group(1): line
            for line in key_table((ROOT / 'docs/training.md').read_text()).splitlines()
            if re.match(r'\| `([\w.]+)` \|', line)}
    wrong = {key: (row, rows.get(key)) for key, row in key_rows().items() if rows.get(key) != row}
    assert wrong == {}


def test_every_model_default_in_the_key_table_is_the_model_classes():
    """Breaks when a default of ``UniSTD``'s arguments changes and its row in docs/training.md keeps the old one."""
    table = key_table((ROOT / 'docs/training.md').read_text())
    defaults = {name: p.default for name, p in inspect.signature(UniSTD.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    shown = dict(re.findall(r'^\| `model\.(\w+)` \| `([^`|]+)` \|', table, flags=re.MULTILINE))
    assert shown and set(shown) <= set(defaults)
    assert {name: shown_value(defaults[name]) for name in shown} == shown


# ---- references: nothing outside the repository, every cited section exists -----------------------------------

OUTSIDE = tuple(f'{name}.md' for name in ('METHOD', 'ARCHITECTURE', 'DATASETS', 'PERFORMANCE')) + ('shared/' 'design',)
"""Design documents that live outside the repository (spelt in parts, so this file does not cite them)."""


def tracked_files() -> list[Path]:
    """The repository's files: git's list where there is one, else every file outside virtualenvs and outputs."""
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / name for name in out.decode().split('\0') if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = ('.git', '.venv', 'work_dirs', '__pycache__', 'data')
        return [p for p in ROOT.rglob('*') if p.is_file()
                and not any(part.startswith(skip) for part in p.relative_to(ROOT).parts)]


def text_files() -> dict[Path, str]:
    return {path: path.read_text(errors='replace') for path in tracked_files()
            if path.suffix in ('.py', '.md', '.txt', '.cfg', '.ini', '.toml', '.yml', '.yaml', '.sh', '')}


def test_no_file_points_outside_the_repository():
    """Breaks when a comment, doc, config or test cites a design document a user of the repository does not have."""
    found = [f'{path.relative_to(ROOT)}:{number}: {name}' for path in tracked_files()
             for number, line in enumerate(path.read_bytes().decode(errors='replace').splitlines(), 1)
             for name in OUTSIDE if name in line]
    assert found == []


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def headings(path: Path) -> list[str]:
    """The headings of a markdown file, outside code blocks."""
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and (match := re.match(r'#{1,6} +(.+?) *#* *$', line)):
            found.append(match.group(1))
    return found


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file, repeated headings numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(path):
        anchor = github_anchor(heading)
        result.add(f'{anchor}-{seen[anchor]}' if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return result


def test_github_anchor_follows_githubs_rules():
    assert github_anchor("Reaching T' frames: `decode='rollout'` (paper configs) or `'direct'`") == \
        'reaching-t-frames-decoderollout-paper-configs-or-direct'
    assert github_anchor('The demo (`make demo`, `configs/unistd/demo.py`)') == 'the-demo-make-demo-configsunistddemopy'
    assert github_anchor('Trainable parameters versus the paper (Table 7)') == \
        'trainable-parameters-versus-the-paper-table-7'


def cited_sections() -> list[tuple[str, Path, str]]:
    """``(where, doc, anchor)`` of every ``docs/<file>.md#<anchor>`` in the repository, and of every
    ``<file>.md#<anchor>`` or ``#<anchor>`` link inside docs/."""
    cited = []
    for path, text in text_files().items():
        where = str(path.relative_to(ROOT))
        cited += [(where, ROOT / 'docs' / doc, anchor) for doc, anchor in re.findall(r'docs/([\w.-]+\.md)#([\w-]+)', text)]
        if path.parent == ROOT / 'docs':
            cited += [(where, path.parent / (doc or path.name), anchor)
                      for doc, anchor in re.findall(r'\]\(([\w.-]+\.md)?#([\w-]+)\)', text)]
    return cited


def test_every_cited_section_is_a_heading_of_its_doc():
    """Breaks when a heading is renamed (or a citation misspelt) and a ``docs/<file>.md#<anchor>`` leads nowhere."""
    cited = cited_sections()
    assert len(cited) > 20, 'the citations of docs/method.md sections were not found'
    wrong = [f'{where}: {doc.relative_to(ROOT)}#{anchor}' for where, doc, anchor in cited
             if not doc.is_file() or anchor not in anchors(doc)]
    assert wrong == []


def test_every_section_named_in_quotes_is_a_heading_of_its_doc():
    """``docs/<file>.md, "<section>"`` (the docs' own way to cite) must name the start of a heading of that doc."""
    wrong = []
    for path, text in text_files().items():
        for doc, title in re.findall(r'docs/([\w.-]+\.md),? "([^"\n]+)"', text):
            titles = [h.replace('`', '') for h in headings(ROOT / 'docs' / doc)] if (ROOT / 'docs' / doc).is_file() else []
            if not any(heading.startswith(title.replace('`', '')) for heading in titles):
                wrong.append(f'{path.relative_to(ROOT)}: {doc}, "{title}"')
    assert wrong == []


# ---- numbers: every figure of README and docs/ that the code can compute is the code's ---------------------------
# Each is computed with the function behind the command the doc names (tools/analyze.py: engine/analysis.py and
# models/parameters.py; tools/benchmark.py memory: benchmarks/memory.py), on `meta` or fake tensors. Measured
# figures (timings, GPU peaks, training runs) name their command and machine in the doc instead.

PAPER = 'configs/unistd/multi10.py'
TASK_LABELS = {'taxibj': 'taxibj', 'traffic4cast': 'traffic4cast', 't4c': 'traffic4cast', 'mmnist': 'mmnist',
               'movingmnist': 'mmnist', 'bair': 'bair', 'human': 'human', 'human36m': 'human', 'kth': 'kth',
               'cityscapes': 'cityscapes', 'kitti': 'kitti', 'sevir': 'sevir', 'enso': 'enso'}
BASELINE_LABELS = {'SimVP v1': 'simvp_v1', 'SimVP v2': 'simvp_v2', 'TAU': 'tau', 'Earthformer': 'earthformer'}


def task_of(label: str) -> str:
    """The task a doc's row names ('Human3.6M', 'BAIR (5 passes)', 'T4C', ...)."""
    return TASK_LABELS[re.sub(r'[^a-z0-9]', '', re.sub(r'\(.*?\)', '', label).lower())]


def read(name: str) -> str:
    return (ROOT / name).read_text()


def table_after(text: str, marker: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (cells stripped of bold) of the first markdown table from the line of ``marker`` on."""
    rows = []
    for line in text[text.rindex('\n', 0, text.index(marker)) + 1:].splitlines():
        if line.startswith('|'):
            rows.append([cell.strip().strip('*') for cell in line.strip().strip('|').split('|')])
        elif rows:
            break
    return rows[0], rows[2:]


def millions(count: float) -> str:
    return f'{count / 1e6:.2f}M'


def percent(ratio: float) -> str:
    """``ratio - 1`` as the docs write it: '+5%', '−14%' (a minus sign, not a hyphen)."""
    return f'{round(100 * (ratio - 1)):+d}%'.replace('-', '−')


def task_list(config: str) -> tuple[str, ...]:
    return tuple(load_config(ROOT / config)['tasks'])


@functools.lru_cache(maxsize=None)
def structure(options: tuple = (), baseline: str = '', config: str = PAPER) -> torch.nn.Module:
    """The model of ``config`` with ``--cfg-options`` ``options`` (pairs; tuples become lists), or the baseline
    ``configs/_base_/models/<baseline>.py`` at its tasks (``tools/analyze.py --compare``), on ``meta``."""
    cfg = load_config(ROOT / config, {key: list(value) if isinstance(value, tuple) else value
                                      for key, value in options} or None)
    if baseline:
        cfg = config_with_model(cfg, ROOT / 'configs/_base_/models' / f'{baseline}.py')[1]
    return build_structure(cfg)


@functools.lru_cache(maxsize=None)
def gmacs(task: str, options: tuple = (), baseline: str = '', config: str = PAPER) -> float:
    """G-MACs of one prediction of ``task`` (``tools/analyze.py --json``'s ``gmacs``)."""
    return multiply_accumulates(structure(options, baseline, config), task) / 1e9


def trainable(options: tuple = (), baseline: str = '', config: str = PAPER) -> int:
    return count_parameters(structure(options, baseline, config)).trainable


def test_task_table_is_the_paper_tasks():
    """docs/method.md's task table: shapes, encoder depths, token grids and T·C' of ``PAPER_TASKS``."""
    header, rows = table_after(read('docs/method.md'), '## Task table')
    hidden = load_config(ROOT / PAPER)['model']['hidden_channels']
    assert [task_of(row[0]) for row in rows] == list(PAPER_TASKS)
    for row in rows:
        t = PAPER_TASKS[task_of(row[0])]
        assert row[1:] == [f'{t.input_frames} → {t.output_frames}', f'{t.channels}, {t.height}, {t.width}',
                           str(t.encoder_depth), '×'.join(map(str, t.token_grid)), str(t.input_frames * hidden)], row


def test_table_7_trainable_parameters():
    """Paper Table 7 as we count it (docs/method.md, docs/baselines.md, the paper model's config comment)."""
    three, seven = task_list('configs/baselines/tau/multi3.py'), task_list('configs/baselines/tau/multi7.py')
    method = read('docs/method.md')
    _, rows = table_after(method, '## Trainable parameters versus the paper')
    method = flat(method)
    assert [row[0] for row in rows][-1] == 'all ten'
    for label, r32, r8, _paper in rows:
        listed = tuple(PAPER_TASKS) if label == 'all ten' else tuple(map(task_of, label.split(' + ')))
        assert sorted(listed) in (sorted(three), sorted(seven), sorted(PAPER_TASKS)), label
        tasks = (('tasks', listed),)
        assert [r32, r8] == [millions(trainable(tasks)), millions(trainable(tasks + (('model.lora.max_rank', 8),)))]

    parts = structure((('tasks', three),)).parameter_breakdown()
    r8_parts = structure((('tasks', three), ('model.lora.max_rank', 8))).parameter_breakdown()
    shared = sum(parts[p].trainable for p in ('LoRA experts', 'temporal FFN', 'routers', 'ranks'))
    ends = parts['task encoders'].trainable + parts['task decoders'].trainable
    assert (f"Of our {millions(trainable((('tasks', three),)))} for three tasks, {millions(shared)} are shared "
            f"(LoRA experts {millions(parts['LoRA experts'].trainable)}, temporal FFN "
            f"{millions(parts['temporal FFN'].trainable)}, routers {millions(parts['routers'].trainable)}; at R = 8 "
            f"the experts are {millions(r8_parts['LoRA experts'].trainable)}) and {millions(ends)} are task "
            'encoders/decoders') in method
    per_task = (trainable((('tasks', seven),)) - trainable((('tasks', three),))) / (len(seven) - len(three))
    assert f'than ours (≈{per_task / 1e6:.1f}M per task' in method
    assert f'but {millions(trainable((("tasks", three), ("model.lora.max_rank", 64))))} trainable parameters for ' \
        'three tasks' in method
    assert f'3-task trainable parameters {millions(trainable((("tasks", three),)))} against' in \
        flat(read('configs/_base_/models/unistd_vit_b.py').replace('\n#', ' '))

    header, rows = table_after(read('docs/baselines.md'), '| trainable parameters |')
    assert header[1:4] == ['3 tasks (KITTI, T4C, KTH)', '7 tasks', '10 tasks']
    assert tuple(map(task_of, re.findall(r'\((.*)\)', header[1])[0].split(', '))) == three
    assert [row[0] for row in rows] == ['UniSTD (R = 32)', *BASELINE_LABELS]
    for row in rows:
        baseline = BASELINE_LABELS.get(row[0], '')
        assert row[1:4] == [millions(trainable((('tasks', tasks),), baseline)) for tasks in (three, seven,
                                                                                             tuple(PAPER_TASKS))], row


def test_table_9_multiply_accumulates():
    """Paper Table 9 as we count it (docs/method.md at R = 32 and R = 8, docs/baselines.md for every model), and the
    figures docs/method.md draws from it."""
    r8 = (('model.lora.max_rank', 8),)
    method = read('docs/method.md')
    header, rows = table_after(method, '## Paper Table 9 reproduced')
    assert header[:7] == ['task', 'passes', 'ours (rollout, R = 32, the config)', 'paper', 'ours / paper', 'R = 8',
                          'R = 8 / paper']
    assert [task_of(row[0]) for row in rows] == list(PAPER_TASKS)
    paper, model = {}, structure()
    for row in rows:        # the two "(before)" columns are of earlier code, kept as measured
        task = task_of(row[0])
        paper[task] = float(row[3])
        ours, low = gmacs(task), gmacs(task, r8)
        assert row[1:7] == [str(model.passes(task)), f'{ours:.2f}', row[3], percent(ours / paper[task]),
                            f'{low:.2f}', percent(low / paper[task])], row

    excess = {task: (paper[task] - gmacs(task, r8)) * 1e3 / (model.passes(task) * math.prod(t.token_grid))
              for task, t in PAPER_TASKS.items()}     # M MACs per token
    eight = [excess[task] for task in PAPER_TASKS if task not in ('human', 'sevir')]
    assert (f'is {min(eight):.0f}–{max(eight):.0f} M MACs per token for eight tasks (Human3.6M {excess["human"]:.0f}, '
            f'SEVIR {excess["sevir"]:.0f}'.replace('-', '−')) in flat(method)
    off = {task: round(100 * abs(gmacs(task) / paper[task] - 1)) for task in PAPER_TASKS}
    assert f'nine tasks then lie within {max(v for t, v in off.items() if t != "human")}% and Human3.6M at ' \
           f'{percent(gmacs("human") / paper["human"])}' in flat(method)
    sevir = sorted(round(100 * (gmacs('sevir', o) / paper['sevir'] - 1)) for o in ((), r8))
    wide = gmacs('sevir', (('model.inner_channels', 64),))
    assert f"SEVIR costs {wide:.2f} G with C', {gmacs('sevir'):.2f} G with T', within {sevir[0]}–{sevir[1]}% of the " \
           f"paper's {paper['sevir']}" in flat(method)
    assert f'({wide:.2f} G against {paper["sevir"]}: `python tools/analyze.py' in flat(method)
    direct = [gmacs(task, (('model.decode', 'direct'),)) for task in ('bair', 'cityscapes', 'enso')]
    assert f'one direct pass costs {direct[0]:.2f}, {direct[1]:.2f} and {direct[2]:.2f} G' in flat(method)
    ratios = [paper[task] / cost for task, cost in zip(('bair', 'cityscapes', 'enso'), direct)]
    assert f"(the paper's figures are {min(ratios):.1f}–{max(ratios):.1f}× those of one direct pass" in flat(method)
    lora = load_config(ROOT / PAPER)['model']['lora']
    experts, width = 3 * lora['qkv_experts'] + lora['proj_experts'], model.backbone.norm.normalized_shape[0]
    assert f'cost {experts} × 2 × {width} × R MACs per token per block' in flat(method)
    assert f'R = 32 instead of R = 8 adds {experts * 2 * width * 24 / 1e6:.2f} M' in method
    assert f'R = 64 would add {experts * 2 * width * 56 / 1e6:.2f} M' in method

    header, rows = table_after(read('docs/baselines.md'), '| G-MACs (10-task models) |')
    assert header[1:-1:2] == ['UniSTD (R = 32)', *[label for label in BASELINE_LABELS if label != 'Earthformer']] \
        and header[-1] == 'Earthformer'
    models = [(i, BASELINE_LABELS.get(label, '')) for i, label in enumerate(header) if i and label != 'paper']
    for row in rows:
        task = task_of(row[0])
        if '(' in row[0]:
            assert row[0].endswith(f'({model.passes(task)} passes)')
        assert [row[i] for i, _ in models] == [f'{gmacs(task, (), baseline):.2f}' for _, baseline in models], row


def flat(text: str) -> str:
    """``text`` with every run of white space (line breaks, indents) one space: prose is checked by sentence."""
    return re.sub(r'\s+', ' ', text)


def test_export_holds_the_trained_values():
    """README and docs/training.md: the values an export of the paper model holds (every tensor but the frozen
    backbone's, as ``inference/export.py`` keeps them) against the whole model's."""
    model = structure()
    state, frozen = model.state_dict(), backbone_keys(model)
    kept = [tensor for key, tensor in state.items() if key not in frozen]
    values, total = sum(t.numel() for t in kept), sum(t.numel() for t in state.values())
    megabytes = sum(t.numel() * t.element_size() for t in kept) / 1e6
    assert f'holds only what was trained ({millions(values)} values for the ten paper tasks instead of the ' \
           f'{millions(total)} of the whole model' in flat(read('README.md'))
    assert f'that is {millions(values)} values ({megabytes:.0f} MB in float32) instead of the {millions(total)} of ' \
           'the model' in flat(read('docs/training.md'))


def test_sevir_memory_estimate():
    """SEVIR's batch-16 bf16 step with and without its task ends checkpointed: docs/performance.md's table row and
    the same figures in its prose, docs/training.md and the paper model's config comment.

    ``tools/benchmark.py memory`` estimates the config's tasks in order, and today a task's estimate includes the
    gradients of the task before it (which ``estimate_training_peaks`` still holds); KITTI precedes SEVIR in the
    config, so estimating the two gives the command's SEVIR row."""
    cfg = load_config(ROOT / PAPER)
    estimates, flops = {}, {}
    for label, value in (('none', False), ('ends', True)):
        variant = dict(cfg)
        variant['model'] = {**dict(cfg['model']), 'checkpointing': value}
        model = build_structure(variant)
        estimates[label] = estimate_training_peaks(model, ['kitti', 'sevir'], 16, bf16=True)['sevir']
        flops[label] = step_flops(model, 'sevir', 16, train=True)
    none, ends, extra = estimates['none'], estimates['ends'].peak / GIB, flops['ends'] / flops['none'] - 1
    assert structure().encoders['sevir'].checkpoint, "the config's own peak is the checkpointed one"
    _, rows = table_after(read('docs/performance.md'), '## Memory of a training step')
    assert [row for row in rows if row[0] == 'sevir'] == [[
        'sevir', f'{none.peak / GIB:.2f}', f'{none.weights / GIB:.2f}', f'{none.optimizer / GIB:.2f}',
        f'{none.gradients / GIB:.3f}', f'{none.activations / GIB:.2f}', f'{ends:.2f}', f'{extra:+.1%}', f'{ends:.2f}',
        f'{40 - ends:.1f}']]
    performance = flat(read('docs/performance.md'))
    assert f'drops from {none.peak / GIB:.1f} to {ends:.1f} GiB for {extra:+.1%}' in performance
    assert f'its step is estimated at {ends:.1f} GiB' in performance
    assert f'needs {none.peak / GIB:.1f} GiB without, {ends:.1f} GiB with ({extra:+.1%} FLOPs)' in \
        flat(read('docs/training.md'))
    assert f'would otherwise need {none.peak / GIB:.1f} GiB ({ends:.1f} GiB with it)' in \
        flat(read('configs/_base_/models/unistd_vit_b.py').replace('\n#', ' '))


def test_demo_figures():
    """The demo's parameter counts, expert count and rank budget in docs/method.md, and README's cost of the demo
    with a CLIP ViT-B/16 against the demo's (G-MACs per sample of each task)."""
    method = flat(read('docs/method.md'))
    demo, clip = 'configs/unistd/demo.py', 'configs/unistd/demo_clip.py'
    assert f'at {millions(trainable((("model.lora.max_rank", 32),), config=demo))} trainable parameters against ' \
           f'{millions(trainable(config=demo))}' in method
    tau = count_parameters(structure(config='configs/baselines/task_ends_demo_tau.py')).total
    assert f"0.95M parameters for the tasks of then, {millions(tau)} for today's" in method
    study = structure(config='configs/unistd/ablations/task_ends_demo.py')
    experts = study.parameter_breakdown()['ranks'].trainable
    assert f'all {experts} experts at 5: total {5 * experts} for a budget of {initial_total_rank(study):.0f}' in method
    assert f'C = {4 * experts} = 4 × {experts} experts' in method
    ratios = [gmacs(task, config=clip) / gmacs(task, config=demo) for task in task_list(demo)]
    assert f'({min(ratios):.0f}–{max(ratios):.0f}× the multiply-accumulates per sample' in flat(read('README.md'))


def test_layer_table_is_the_one_the_layer_check_uses():
    """docs/architecture.md's ranks are ``tests/test_layers.py``'s ``LAYERS``."""
    from tests.test_layers import LAYERS

    _, rows = table_after(read('docs/architecture.md'), '## Layers')
    assert {row[0].strip('`'): int(row[1]) for row in rows} == LAYERS
    assert len(rows) == len(LAYERS)
