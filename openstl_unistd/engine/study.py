"""Studies (``tools/study.py``): a list of runs (configs × variants × seeds), run in order, then reported.

A study config is a Python file (mmengine ``Config``)::

    work_dir = 'work_dirs/studies/demo'        # the study's folder (default: work_dirs/studies/<file name>)
    cfg_options = {'trainer.max_epochs': 2}    # applied to every run (as --cfg-options)
    runs = [dict(name='tau', config='../baselines/demo_tau.py', seeds=[0, 1],
                 cfg_options={...}, variants=dict(lr1e3={'optim.lr': 1e-3}), cost=dict(...)), ...]
    report = dict(table='runs', metric='mse')  # tools/report.py's --table and --metric

Config paths are relative to the study file. Each run gets its resolved config written to
``<folder>/.configs/<run>.py`` and trains in ``<folder>/<run>/`` as its own ``tools/train.py``
subprocess (its output in ``<run>/train.log``), so a crash or kill of one run leaves the others, and
the study, resumable. Before anything runs every run gets a status: ``done`` (``results.json`` and a
``config.py`` equal to the planned one: skipped), ``resume`` (same config, no results, a
``checkpoints/last.ckpt``: ``--resume``), ``restart`` (same config, killed before its first checkpoint:
``--overwrite``), ``new``, or ``conflict`` (the folder holds a run of another config: the study stops
before running anything and names the differing keys). Then the report (``report.py``) of the
finished runs is written to ``<folder>/report.md`` and ``report.png``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from ..errors import UserKeyError, UserTypeError, UserValueError, check_known_keys
from .config import load_config
from .run_records import CONFIG_FILE, RESULTS_FILE, RunSkipped, flatten, read_results

STUDY_KEYS = ('work_dir', 'cfg_options', 'runs', 'report')
RUN_KEYS = ('name', 'config', 'seeds', 'cfg_options', 'variants', 'cost')
REPORT_KEYS = ('table', 'metric')
NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')
CONFIGS_FOLDER = '.configs'
TIMES_FILE = 'times.json'
LOG_FILE = 'train.log'


@dataclass
class PlannedRun:
    """One run of a study: its name, source config, seed, options and expected cost."""

    name: str
    config: Path
    seed: int
    cfg_options: dict
    folder: Path
    cost: dict = field(default_factory=dict)

    @property
    def planned_config(self) -> Path:
        return self.folder.parent / CONFIGS_FOLDER / f'{self.name}.py'


@dataclass
class Study:
    """A loaded study: its file, folder, runs and report options."""

    path: Path
    folder: Path
    runs: list[PlannedRun]
    table: str = 'runs'
    metric: Optional[str] = None


@dataclass
class RunStatus:
    run: PlannedRun
    status: str
    detail: str = ''


def _options(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserTypeError(f'{where}: expected a dict of config keys and values, got {value!r}')
    return dict(value)


def load_study(path: str | Path, work_dir: Optional[str | Path] = None, cfg_options: Optional[Mapping] = None) -> Study:
    """The study of ``path``; ``work_dir`` and ``cfg_options`` (applied last, to every run) from the command line."""
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'study config {str(path)!r} not found')
    try:
        data = Config.fromfile(str(path)).to_dict()
    except Exception as error:  # the study file is code: any failure is the file's
        raise UserValueError(f'study config {str(path)!r}: {type(error).__name__}: {error}') from None
    check_known_keys(data, STUDY_KEYS, f'study config {path}')
    folder = Path(work_dir or data.get('work_dir') or Path('work_dirs') / 'studies' / path.stem)
    common = _options(data.get('cfg_options'), f'{path}: cfg_options')
    last = dict(cfg_options or {})
    entries = data.get('runs')
    if not isinstance(entries, list) or not entries:
        raise UserTypeError(f'study config {path}: "runs" must be a non-empty list of dict(name=..., config=...)')
    runs: list[PlannedRun] = []
    for index, entry in enumerate(entries):
        where = f'{path}: runs[{index}]'
        if not isinstance(entry, Mapping):
            raise UserTypeError(f'{where}: expected dict(name=..., config=...), got {entry!r}')
        check_known_keys(entry, RUN_KEYS, where)
        missing = [key for key in ('name', 'config') if key not in entry]
        if missing:
            raise UserKeyError(f'{where}: missing {missing}')
        config = Path(os.path.normpath(path.parent / entry['config']))
        if not config.is_file():
            config = Path(entry['config'])
        if not config.is_file():
            raise FileNotFoundError(f'{where}: config {entry["config"]!r} not found (relative to {path.parent})')
        seeds = entry.get('seeds', [None])
        if not isinstance(seeds, (list, tuple)) or not seeds or not all(
                s is None or (isinstance(s, int) and not isinstance(s, bool)) for s in seeds):
            raise UserTypeError(f'{where}: seeds must be a non-empty list of integers, got {seeds!r}')
        variants = entry.get('variants') or {'': {}}
        if not isinstance(variants, Mapping):
            raise UserTypeError(f'{where}: variants must be a dict of name → cfg_options, got {variants!r}')
        own = _options(entry.get('cfg_options'), f'{where}.cfg_options')
        for variant, options in variants.items():
            options = _options(options, f'{where}.variants.{variant}')
            for seed in seeds:
                if seed is None:
                    seed = int(load_config(config).get('seed', 0))
                name = '-'.join(part for part in (str(entry['name']), str(variant), f'seed{seed}') if part)
                if not NAME.match(name):
                    raise UserValueError(f'{where}: run name {name!r} must be letters, digits, "_", ".", "+" or "-"')
                if any(r.name == name for r in runs):
                    raise UserValueError(f'{where}: run name {name!r} is used twice in the study')
                runs.append(PlannedRun(name, config, seed, {**common, **own, **options, **last}, folder / name,
                                       dict(entry.get('cost') or {})))
    report = _options(data.get('report'), f'{path}: report')
    check_known_keys(report, REPORT_KEYS, f'{path}: report')
    return Study(path, folder, runs, str(report.get('table', 'runs')), report.get('metric'))


def resolved_config(run: PlannedRun):
    """The run's config: its file, the study's and the run's options, its seed."""
    cfg = load_config(run.config, run.cfg_options)
    cfg.seed = run.seed
    return cfg


def _config_data(file: Path) -> dict:
    from mmengine.config import Config

    return Config.fromfile(str(file)).to_dict()


def write_planned_config(run: PlannedRun) -> Path:
    run.planned_config.parent.mkdir(parents=True, exist_ok=True)
    resolved_config(run).dump(str(run.planned_config))
    return run.planned_config


def differing_keys(a: Mapping, b: Mapping) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    return sorted(k for k in set(fa) | set(fb) if json.dumps(fa.get(k), default=str) != json.dumps(fb.get(k), default=str))


def finished(folder: Path) -> bool:
    """Whether ``results.json`` holds a non-empty ``results`` section (the report's reading of it)."""
    try:
        results = read_results(folder)['results']
    except (OSError, RunSkipped):
        return False
    return isinstance(results, dict) and bool(results)


def status_of(run: PlannedRun) -> RunStatus:
    """What running the study would do with ``run`` (see the module's docstring); writes its planned config."""
    planned = _config_data(write_planned_config(run))
    folder = run.folder
    existing = folder / CONFIG_FILE
    outputs = [name for name in (RESULTS_FILE, 'checkpoints', 'logs') if (folder / name).exists()]
    if not existing.is_file():
        if outputs:
            return RunStatus(run, 'conflict', f'{folder} holds {outputs} but no {CONFIG_FILE}: not a run of this study')
        return RunStatus(run, 'new')
    try:
        differ = differing_keys(planned, _config_data(existing))
    except Exception as error:  # a config file is code: any failure is the file's
        return RunStatus(run, 'conflict', f'{existing} cannot be read ({type(error).__name__}: {error})')
    if differ:
        shown = ', '.join(differ[:6]) + (', …' if len(differ) > 6 else '')
        return RunStatus(run, 'conflict', f'{existing} is another config than the study\'s for this run (differs in '
                                          f'{shown}); move the folder away or rename the run')
    if finished(folder):
        return RunStatus(run, 'done')
    if (folder / 'checkpoints' / 'last.ckpt').is_file():
        return RunStatus(run, 'resume', 'interrupted: resumes from checkpoints/last.ckpt')
    return RunStatus(run, 'restart', 'interrupted before its first checkpoint: starts again')


def plan(study: Study, only: Optional[Sequence[str]] = None) -> list[RunStatus]:
    """The status of every run (of the names matching ``only``'s globs, when given)."""
    import fnmatch

    runs = [r for r in study.runs if not only or any(fnmatch.fnmatch(r.name, pattern) for pattern in only)]
    if only and not runs:
        raise UserValueError(f'--only {list(only)}: no run of {study.path} matches (runs: {[r.name for r in study.runs]})')
    return [status_of(run) for run in runs]


def _hours(cost: Mapping) -> Optional[float]:
    return cost.get('hours', cost['steps'] * cost['step_s'] / 3600 if 'steps' in cost and 'step_s' in cost else None)


def format_cost(cost: Mapping) -> str:
    """``peak 22.9 GiB · 4 GPUs · 170 000 steps · 0.6 s/step · ≈ 28 h`` from a run's ``cost`` entry."""
    parts = []
    if 'peak_gib' in cost:
        parts.append(f"peak {cost['peak_gib']} GiB/GPU")
    if 'gpus' in cost:
        parts.append(f"{cost['gpus']} GPU{'s' if cost['gpus'] != 1 else ''}")
    if 'steps' in cost:
        parts.append(f"{cost['steps']:,} steps")
    if 'step_s' in cost:
        parts.append(f"{cost['step_s']} s/step")
    hours = _hours(cost)
    if hours is not None:
        parts.append(f'≈ {hours:.3g} h')
    if 'note' in cost:
        parts.append(str(cost['note']))
    return ' · '.join(parts)


def describe_plan(statuses: Sequence[RunStatus], table: str = 'runs') -> str:
    """A few lines per run: status, config, seed and options, the paper row it reproduces, its expected cost."""
    from .report import paper_line_of

    lines = []
    for number, item in enumerate(statuses, 1):
        run = item.run
        line = f'[{number}/{len(statuses)}] {run.name}: {item.status}' + (f' ({item.detail})' if item.detail else '')
        line += f'\n      {run.config} seed {run.seed}' + (f' {run.cfg_options}' if run.cfg_options else '')
        if table != 'runs':
            paper = paper_line_of(_config_data(run.planned_config), table)
            line += f'\n      reproduces: {f"{paper.source}, {paper.label}" if paper else f"no row of paper Table {table}"}'
        if run.cost:
            line += f'\n      expected cost: {format_cost(run.cost)}'
        lines.append(line)
    hours = [_hours(s.run.cost) for s in statuses if s.status != 'done']
    if any(h is not None for h in hours):
        lines.append(f'expected cost of the {len(hours)} run(s) to do: ≈ {sum(h for h in hours if h):.3g} h'
                     + (' (some runs have no estimate)' if None in hours else ''))
    return '\n'.join(lines)


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)}m{seconds % 60:04.1f}s'


def _tail(file: Path, lines: int = 6) -> str:
    try:
        return '\n'.join('      ' + line for line in file.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return ''


def _record_time(folder: Path, name: str, seconds: float) -> None:
    file = folder / TIMES_FILE
    try:
        times = json.loads(file.read_text()) if file.is_file() else {}
    except ValueError:
        times = {}
    entry = times.get(name) if isinstance(times.get(name), dict) else {'seconds': 0.0, 'sessions': 0}
    times[name] = {'seconds': entry['seconds'] + seconds, 'sessions': entry['sessions'] + 1}
    file.write_text(json.dumps(times, indent=2))


def train_command(item: RunStatus, train_script: Path, data_root: Optional[str] = None) -> list[str]:
    """The ``tools/train.py`` command of a run: its planned config, its folder, ``--resume`` or ``--overwrite``."""
    command = [sys.executable, str(train_script), '-c', str(item.run.planned_config), '--work-dir', str(item.run.folder)]
    if item.status == 'resume':
        command.append('--resume')
    elif item.status == 'restart':
        command.append('--overwrite')
    if data_root:
        command += ['--data-root', data_root]
    return command


@dataclass
class StudyOutcome:
    statuses: list[RunStatus]
    trained: list[str]
    failed: list[str]
    seconds: float
    report: Optional[Path] = None


def run_study(study: Study, train_script: str | Path, only: Optional[Sequence[str]] = None,
              data_root: Optional[str] = None, echo: Callable[[str], None] = print) -> StudyOutcome:
    """Run the study's missing runs in order, each its own ``train_script`` process, then write its report.

    A run that fails (or is killed) is reported with the end of its log and the next runs go on; the
    report covers the finished runs. Conflicting run folders stop everything before any run starts."""
    statuses = plan(study, only)
    conflicts = [s for s in statuses if s.status == 'conflict']
    if conflicts:
        raise FileExistsError('study ' + str(study.path) + ': ' + '; '.join(f'run {s.run.name}: {s.detail}'
                                                                             for s in conflicts))
    started = time.monotonic()
    trained, failed = [], []
    todo = [s for s in statuses if s.status != 'done']
    for item in statuses:
        if item.status == 'done':
            echo(f'{item.run.name}: done, skipped')
    for number, item in enumerate(todo, 1):
        run = item.run
        run.folder.mkdir(parents=True, exist_ok=True)
        log = run.folder / LOG_FILE
        echo(f'[{number}/{len(todo)}] {run.name}: {item.status}{f" ({item.detail})" if item.detail else ""}; '
             f'log {log}')
        begin = time.monotonic()
        with open(log, 'a') as handle:
            handle.write(f'# tools/study.py {study.path}: {item.status} {run.name}\n')
            handle.flush()
            code = subprocess.run(train_command(item, Path(train_script), data_root), stdout=handle,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        seconds = time.monotonic() - begin
        _record_time(study.folder, run.name, seconds)
        if code == 0 and finished(run.folder):
            trained.append(run.name)
            echo(f'[{number}/{len(todo)}] {run.name}: finished in {_minutes(seconds)}')
        else:
            failed.append(run.name)
            how = f'killed by signal {-code}' if code < 0 else f'exit status {code}'
            echo(f'[{number}/{len(todo)}] {run.name}: failed ({how}) after {_minutes(seconds)}; the study goes on '
                 f'and resumes it when run again. End of {log}:\n{_tail(log)}')
    seconds = time.monotonic() - started
    report = write_study_report(study, [s.run for s in statuses], echo)
    return StudyOutcome(statuses, trained, failed, seconds, report)


def write_study_report(study: Study, runs: Sequence[PlannedRun], echo: Callable[[str], None] = print) -> Optional[Path]:
    """``report.md`` (the table of the finished runs, then each run's training time) and ``report.png``."""
    from .report import build_report, render, save_figure

    done = [r for r in runs if finished(r.folder)]
    if not done:
        echo(f'no finished run in {study.folder}: no report')
        return None
    report = build_report([str(r.folder) for r in done], study.table)
    for problem in report.problems:
        echo(f'skipped: {problem}')
    for note in report.notes:
        echo(f'note: {note}')
    try:
        times = json.loads((study.folder / TIMES_FILE).read_text())
    except (OSError, ValueError):
        times = {}
    lines = ['', f'Runs of `{study.path}` (training wall time on the machine that ran them, all sessions):', '',
             '| run | config | seed | wall time |', '|---|---|---|---|']
    for run in done:
        seconds = times.get(run.name, {}).get('seconds') if isinstance(times.get(run.name), dict) else None
        lines.append(f'| {run.name} | `{run.config}` | {run.seed} | '
                     f'{_minutes(seconds) if seconds is not None else "–"} |')
    text = render(report.table, 'md') + '\n'.join(lines) + '\n'
    path = study.folder / 'report.md'
    path.write_text(text)
    figure = save_figure(report, study.folder / 'report.png', study.metric)
    echo(text)
    echo(f'report written to {path} and {figure}')
    return path
