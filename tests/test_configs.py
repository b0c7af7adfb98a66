"""Every config loads and builds; tools/analyze.py reports what the model really has."""
import json
import math
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from openstl_unistd.tasks import DEMO_TASKS, PAPER_TASKS, resolve_tasks
from openstl_unistd.engine.analysis import build_structure, model_report
from openstl_unistd.engine.config import build_model, load_config
from openstl_unistd.models.parameters import count_parameters
from openstl_unistd.modules.ra_moe import RAMoELoRA

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts and 'studies' not in p.parts)


FAMILIES = {'unistd': ('UniSTD', None), 'simvp_v1': ('MultiTaskSimVP', 'incepu'),
            'simvp_v2': ('MultiTaskSimVP', 'gsta'), 'tau': ('MultiTaskSimVP', 'tau'),
            'earthformer': ('MultiTaskEarthformer', None)}
"""What a config's folder (or, for a file directly under configs/baselines/, the family its name ends with) says
it trains: the model class and, for the SimVP family, its ``model_type``."""


def named_by_path(path: Path) -> tuple[str, Optional[str], Optional[list[str]]]:
    """``(model class, SimVP model_type, tasks)`` that ``path`` names: ``single/<task>.py`` one task,
    ``multi<N>.py`` N of the paper's (``None``: the path names no task list)."""
    parts = path.relative_to(ROOT / 'configs').parts
    family = parts[0] if parts[0] == 'unistd' else (
        parts[1] if len(parts) > 2 else next(name for name in FAMILIES if path.stem.endswith(name)))
    tasks = [path.stem] if 'single' in parts else None
    return (*FAMILIES[family], tasks)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(ROOT / 'configs')))
def test_every_config_builds_the_model_and_the_tasks_its_path_names(path):
    """Break caught: a config that inherits the wrong base or drops an override (e.g. ``model_type='tau'``
    in configs/_base_/models/simvp_v2.py, or a single-task config left with its base's tasks): it would
    still build, with the wrong model or tasks."""
    cfg = load_config(path)
    model_class, model_type, tasks = named_by_path(path)
    model = build_structure(cfg)
    assert type(model).__name__ == model_class
    assert getattr(model, 'model_type', None) == model_type
    specs = resolve_tasks(cfg.tasks)
    assert dict(model.tasks) == {spec.name: spec for spec in specs}
    names = [spec.name for spec in specs]
    if tasks is not None:
        assert names == tasks
    if path.stem.startswith('multi'):
        assert len(names) == int(path.stem[len('multi'):]) and set(names) <= set(PAPER_TASKS)
    known = DEMO_TASKS if 'demo' in path.stem else PAPER_TASKS
    assert set(names) <= set(known)


def test_multi_task_configs_of_every_model_train_the_same_task_sets():
    """Paper Table 7 compares the models at equal tasks: each ``multi<N>.py`` names the same tasks in every
    model family (Break caught: a baseline's multi7 with one task of another set)."""
    sets = {}
    for path in CONFIGS:
        if path.stem.startswith('multi'):
            sets.setdefault(path.stem, set()).add(frozenset(load_config(path).tasks))
    assert {'multi3', 'multi7', 'multi10'} <= set(sets)
    assert all(len(found) == 1 for found in sets.values()), sets
    assert sets['multi10'] == {frozenset(PAPER_TASKS)}


def test_multi10_is_the_paper_model():
    cfg = load_config(ROOT / 'configs/unistd/multi10.py')
    assert cfg.model.backbone == 'clip' and cfg.model.pretrained is True
    assert len(cfg.tasks) == 10
    model = build_structure(cfg)
    assert count_parameters(model.backbone).frozen == 85_057_536  # ViT-B/16 blocks + ln_pre + ln_post


UNISTD_CONFIGS = [p for p in CONFIGS if p.is_relative_to(ROOT / 'configs/unistd')]


def test_paper_configs_take_max_rank_32_and_the_cpu_demos_keep_8():
    """R = 32 is what paper Tables 7 and 9 point to; the demo measured better at 8 (docs/method.md)."""
    ranks = {p.relative_to(ROOT / 'configs/unistd').as_posix(): load_config(p).model.lora.max_rank
             for p in UNISTD_CONFIGS}
    demos = {name for name in ranks if 'demo' in name}
    assert {'demo.py', 'demo_clip.py', 'demo_pair.py', 'extend_demo.py', 'ablations/task_ends_demo.py'} <= demos
    assert {name: ranks[name] for name in demos} == dict.fromkeys(demos, 8)
    paper = set(ranks) - demos - {'ablations/no_moe.py'}
    assert {'multi10.py', 'multi4.py', 'single/sevir.py', 'ablations/init_laion.py'} <= paper
    assert {name: ranks[name] for name in paper} == dict.fromkeys(paper, 32)
    adapters = [m for m in build_structure(load_config(ROOT / 'configs/unistd/multi10.py')).modules()
                if isinstance(m, RAMoELoRA)]
    assert adapters and {m.max_rank for m in adapters} == {32}


def test_analyze_prints_the_real_counts_and_shapes(capsys):
    """The parameter table against the model built for real (not on ``meta``), the task table against
    shapes, grids and passes computed from the task table alone. Break caught: rounding the passes down
    (``frames // frames_per_pass`` in ``models/rollout.passes_needed``): Cityscapes (2 → 5 frames) and
    ENSO (12 → 14) would print 2 and 1 passes."""
    cfg = load_config(ROOT / 'configs/unistd/tiny_test.py')
    model = build_model(cfg, load_pretrained=False)
    module = runpy.run_path(str(ROOT / 'tools/analyze.py'))
    assert module['main'](['-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--batch-size', '2']) == 0
    lines = capsys.readouterr().out.splitlines()
    parts = {}
    for line in lines[lines.index(next(l for l in lines if l.startswith('part '))) + 1:]:
        if line.startswith('total '):
            break
        name, trainable, frozen = line.rsplit(None, 2)
        parts[name.strip()] = (int(trainable.replace(',', '')), int(frozen.replace(',', '')))
    assert parts == {part: (count.trainable, count.frozen) for part, count in model.parameter_breakdown().items()}
    real = count_parameters(model)
    assert f'total parameters: {real.total:,} ({real.total / 1e6:.2f}M); trainable: {real.trainable:,} ' \
           f'({real.trainable / 1e6:.2f}M)' in lines
    assert sum(t for t, _ in parts.values()) == real.trainable and sum(f for _, f in parts.values()) == real.frozen
    header = next(i for i, line in enumerate(lines) if line.startswith('task ') and 'input' in line)
    rows = {line.split()[0]: line for line in lines[header + 1:] if line.strip()}
    assert list(rows) == list(PAPER_TASKS)
    for name, spec in PAPER_TASKS.items():
        t, t_out, c, h, w, n = (spec.input_frames, spec.output_frames, spec.channels, spec.height, spec.width,
                                spec.encoder_depth)
        grid = f'{math.ceil(h / 2 ** n)}x{math.ceil(w / 2 ** n)}'
        assert rows[name].split(None, 1)[1].split() == [
            *str((2, t, c, h, w)).split(), *str((2, t_out, c, h, w)).split(), grid, str(math.ceil(t_out / t))], name


def test_cfg_options_override_existing_keys_and_reject_unknown_ones():
    cfg = load_config(ROOT / 'configs/unistd/tiny_test.py', {'model.lora.max_rank': 6, 'model.hidden_channels': 4})
    assert cfg.model.lora.max_rank == 6 and cfg.model.hidden_channels == 4
    with pytest.raises(KeyError, match=r"--cfg-options: unknown key\(s\) \['modle.lora.max_rank', 'seeed'\]; they do not exist"):
        load_config(ROOT / 'configs/unistd/tiny_test.py', {'modle.lora.max_rank': 6, 'seeed': 1})
    cfg = load_config(ROOT / 'configs/unistd/tiny_test.py', {'model.lora.max_rnk': 6, 'trainer.limit_val_batches': 2})
    assert cfg.trainer.limit_val_batches == 2
    with pytest.raises(KeyError, match=r"model.lora: unknown key\(s\) \['max_rnk'\]"):
        build_structure(cfg)


def test_analyze_reports_bad_input_in_one_line():
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools/analyze.py'), '-c', 'configs/unistd/tiny_test.py',
         '--cfg-options', 'tasks=[taxibj,mnist]'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: config key tasks: unknown task 'mnist'") and 'Traceback' not in result.stderr
    missing = subprocess.run([sys.executable, str(ROOT / 'tools/analyze.py'), '-c', 'configs/none.py'],
                             cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "config file 'configs/none.py' not found" in missing.stderr


def test_a_config_that_cannot_merge_into_its_base_is_named_in_one_line(tmp_path):
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = ['{ROOT / 'configs/unistd/multi10.py'}']\n"
                     "model = dict(checkpointing=dict(task_ends=True, blocks=True))\n")    # the base has a list
    result = subprocess.run([sys.executable, str(ROOT / 'tools/analyze.py'), '-c', str(child)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.startswith(f"error: config '{child}': checkpointing=") and '_delete_=True' in result.stderr


def test_analyze_compares_baselines_with_their_real_counts(capsys):
    from openstl_unistd.engine.analysis import multiply_accumulates

    module = runpy.run_path(str(ROOT / 'tools/analyze.py'))
    assert module['main'](['-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--cfg-options', "tasks=[taxibj,enso]",
                           '--compare', str(ROOT / 'configs/_base_/models/tau.py')]) == 0
    out = capsys.readouterr().out
    cfg = load_config(ROOT / 'configs/unistd/tiny_test.py', {'tasks': ['taxibj', 'enso']})
    tau_cfg = dict(cfg)
    tau_cfg['model'] = load_config(ROOT / 'configs/_base_/models/tau.py')['model']
    tau = build_model(tau_cfg)
    line = next(l for l in out.splitlines() if l.startswith('tau '))
    assert f'{count_parameters(tau).trainable / 1e6:.2f}M' in line
    macs = multiply_accumulates(build_structure(tau_cfg), 'enso')
    assert macs > 0 and f'{macs / 1e9:.2f}' in [l for l in out.splitlines() if l.startswith('enso ')][-1]


def test_named_task_sets_match_the_configs():
    from openstl_unistd.tasks import TASK_SETS

    configs = {'multi10': 'unistd/multi10.py', 'multi7': 'baselines/tau/multi7.py', 'multi4': 'unistd/multi4.py',
               'multi3': 'baselines/simvp_v1/multi3.py', 'multi_demo': 'unistd/demo.py'}
    for name, path in configs.items():
        assert tuple(load_config(ROOT / 'configs' / path).tasks) == TASK_SETS[name], name


def test_analyze_json_is_one_object_with_every_task_and_rollout_passes(capsys):
    from openstl_unistd.engine.analysis import multiply_accumulates

    module = runpy.run_path(str(ROOT / 'tools/analyze.py'))
    assert module['main'](['-c', str(ROOT / 'configs/unistd/tiny_test.py'), '--json',
                           '--compare', str(ROOT / 'configs/_base_/models/tau.py')]) == 0
    report = json.loads(capsys.readouterr().out)  # nothing but the object on stdout
    model = build_structure(load_config(ROOT / 'configs/unistd/tiny_test.py'))
    assert (report['trainable_params'], report['frozen_params']) == (count_parameters(model).trainable,
                                                                     count_parameters(model).frozen)
    assert list(report['tasks']) == list(PAPER_TASKS)
    for name, spec in PAPER_TASKS.items():
        entry = report['tasks'][name]
        assert set(entry) == {'input', 'output', 'token_grid', 'passes', 'gmacs'}
        assert entry['input'] == list(spec.input_shape) and entry['output'] == list(spec.output_shape)
        assert entry['token_grid'] == list(spec.token_grid)
        assert entry['passes'] == -(-spec.output_frames // spec.input_frames)
    assert [report['tasks'][t]['passes'] for t in ('bair', 'cityscapes', 'enso', 'traffic4cast')] == [5, 3, 2, 1]
    assert report['tasks']['bair']['gmacs'] == round(multiply_accumulates(model, 'bair') / 1e9, 4)
    # five passes of a 2 → 2 model cost five times one pass (same model, T' = T)
    one_pass = multiply_accumulates(build_structure(load_config(
        ROOT / 'configs/unistd/tiny_test.py', {'tasks': [dict(name='bair', output_frames=2)]})), 'bair')
    assert multiply_accumulates(model, 'bair') == 5 * one_pass
    tau = report['baselines']['tau']
    assert tau['tasks']['bair']['passes'] == 5 and tau['tasks']['sevir']['token_grid'] == [96, 96]


def test_reports_name_the_baseline_and_its_own_latent_grid():
    report = model_report(load_config(ROOT / 'configs/baselines/demo_tau.py'))
    assert report.startswith('model: TAU (structure only')
    # TAU's translator works on its encoder's 16×16 grid (N_S = 2: one stride-2 layer), not UniSTD's tokens
    assert [line.split()[-2] for line in report.splitlines() if line.startswith('demo_')] == ['16x16'] * 3


def test_the_configs_write_out_the_one_paper_preset():
    """The configs spell out ``PAPER_LORA``/``PAPER_TEMPORAL`` rather than import them: an mmengine config that
    imports a package module is read as a "lazy import" config, which its old-style ``_base_`` children cannot
    inherit from, and the imported names would become config keys. Breaks when the paper's settings change in
    ``models/unistd.py`` and not in the configs, or back."""
    from openstl_unistd.models.unistd import PAPER_LORA, PAPER_TEMPORAL

    base = load_config(ROOT / 'configs/_base_/models/unistd_vit_b.py').model
    openstl = runpy.run_path(str(ROOT / 'openstl_unistd/openstl_configs/unistd.py'))
    assert [base.lora, base.temporal] == [PAPER_LORA, PAPER_TEMPORAL]
    assert [openstl['lora'], openstl['temporal']] == [PAPER_LORA, PAPER_TEMPORAL]
