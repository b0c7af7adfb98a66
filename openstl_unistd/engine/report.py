"""The paper's tables from runs (``tools/report.py``): our runs as rows, the published numbers beside them.

Runs are read by ``run_records.py`` and grouped: runs whose configs differ only in the seed (and in
settings that change nothing learnt or scored, ``GROUPING_IGNORES``) are one row, its cells the mean ±
sample standard deviation (n − 1) over them and n. A paper table (``2``, ``3``, ``4``, ``5``, ``10``;
``paper_results.py``) puts under each group the paper's row for the same model, task set and variant
and the difference, ours − paper; the paper's rows no run matches follow. ``runs`` is a plain table of
any runs, a row per task and group, with the reference predictors' rows (copy last frame, training mean)
from the runs' own ``results.json``. Where our metric convention differs from the paper's (SSIM's
``data_range``) the column header says so. Runs that cannot be used are left out with one line each
(:attr:`Report.problems`) and the rest renders.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

from ..errors import UserValueError
from .paper_results import PAPER_CONVENTIONS, ROWS, TABLES
from .run_records import REFERENCE_SECTIONS, RunRecord, describe_config, read_runs, task_set_label

TABLE_CHOICES = (*TABLES, 'runs')
FORMATS = ('md', 'csv', 'latex')
MISSING = '–'

TASK_NAMES = {'taxibj': 'TaxiBJ', 'traffic4cast': 'Traffic4Cast', 'mmnist': 'MMNIST', 'bair': 'BAIR',
              'human': 'Human3.6M', 'kth': 'KTH', 'cityscapes': 'Cityscapes', 'kitti': 'KITTI', 'sevir': 'SEVIR',
              'enso': 'ENSO'}
METRIC_NAMES = {'psnr': 'PSNR', 'ssim': 'SSIM', 'csi_m': 'CSI', 'c_nino34_m': 'Nino3.4 corr.', 'rmse': 'RMSE',
                'mse': 'MSE', 'mae': 'MAE'}
METRIC_ORDER = ('mse', 'mae', 'rmse', 'psnr', 'ssim', 'snr', 'csi_m', 'c_nino34_m', 'c_nino34_wm', 'nino_rmse')
LOWER_IS_BETTER = ('mse', 'mae', 'rmse', 'nino_rmse')


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (n − 1; 0 for one value) and count of one cell's values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> 'Stat':
        values = [float(v) for v in values]
        if any(math.isnan(v) for v in values):
            return cls(math.nan, math.nan, len(values))
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def text(self, group_size: int) -> str:
        if math.isnan(self.mean):
            text = 'nan'
        elif self.n > 1:
            text = f'{self.mean:.4g} ± {self.std:.2g}'
        else:
            text = f'{self.mean:.4g}'
        return text if self.n == group_size else f'{text} (n={self.n})'


@dataclass
class Group:
    """Runs of one configuration (``section='results'``), or one reference predictor's scores over every run
    that has them (``section`` ``copy_last_frame`` or ``train_mean``)."""

    label: str
    runs: list[RunRecord]
    section: str = 'results'

    @property
    def is_reference(self) -> bool:
        return self.section != 'results'

    def scores(self, run: RunRecord) -> dict:
        return run.results if self.section == 'results' else run.references.get(self.section, {})

    def stat(self, task: str, metric: str) -> Optional[Stat]:
        values = [self.scores(r)[task][metric] for r in self.runs if metric in self.scores(r).get(task, {})]
        return Stat.of(values) if values else None

    @property
    def size(self) -> int:
        return len([r for r in self.runs if self.scores(r)])

    def tasks(self) -> list[str]:
        return list(dict.fromkeys(t for r in self.runs for t in self.scores(r)))


@dataclass
class PaperLine:
    """The published rows of one model, task set and variant in a table (Table 3's "Ours" is one per task)."""

    rows: list[dict]

    @property
    def model(self) -> str:
        return self.rows[0]['model']

    def value(self, task: str, metric: str) -> Optional[float]:
        return next((r['values'][task][metric] for r in self.rows if metric in r['values'].get(task, {})), None)

    @property
    def source(self) -> str:
        tables = list(dict.fromkeys(r['table'] for r in self.rows))
        names = '/'.join(dict.fromkeys(r['row'] for r in self.rows))
        return f'paper: Table{"s" if len(tables) > 1 else ""} {", ".join(tables)} "{names}"'

    @property
    def label(self) -> str:
        tasks = self.rows[0]['tasks']
        variant = self.rows[0]['variant']
        parts = [self.model, task_set_label(tasks) if tasks else 'tasks not stated']
        if variant.get('init', 'clip') != 'clip':
            parts.append(f"{variant['init']} init")
        if variant and not variant.get('ra_moe', True):
            parts.append('one expert, fixed ranks')
        if variant and not variant.get('temporal', True):
            parts.append('no temporal module')
        return ' · '.join(parts)


@dataclass
class Table:
    """A rendered table: title, header, rows of cell texts, notes."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What ``tools/report.py`` shows: the table, the groups and paper lines behind it, the runs left out."""

    kind: str
    table: Table
    groups: list[Group]
    matches: dict[int, PaperLine]
    paper_only: list[PaperLine]
    columns: list[tuple[str, str]]
    problems: list[str]

    @property
    def notes(self) -> list[str]:
        """One line per run in the table that the reader should know about (e.g. labelled from its card)."""
        return [r.note for g in self.groups if not g.is_reference for r in g.runs if r.note]


def paper_lines(kind: str) -> list[PaperLine]:
    """The published rows of table ``kind``, one line per model, task set and variant."""
    lines: dict[str, PaperLine] = {}
    for row in ROWS:
        if row['table'] in TABLES[kind]['sources']:
            key = json.dumps([row['model'], sorted(row['tasks']) if row['tasks'] else None, row['variant']],
                             sort_keys=True)
            lines.setdefault(key, PaperLine([])).rows.append(row)
    return list(lines.values())


def matches(line: PaperLine, model: str, tasks: Sequence[str], features: Mapping) -> bool:
    """Whether the paper's line is this model, task set (when the paper states it) and variant."""
    stated = line.rows[0]['tasks']
    return (line.model == model and (stated is None or set(stated) == set(tasks))
            and all(features.get(k) == v for k, v in line.rows[0]['variant'].items()))


def paper_line_of(config: Mapping, kind: str) -> Optional[PaperLine]:
    """The published line of table ``kind`` that a run of ``config`` reproduces, if any."""
    model, tasks, features, _ = describe_config(config)
    return next((line for line in paper_lines(kind) if matches(line, model, tasks, features)), None)


def _disambiguated(groups: list[list[RunRecord]]) -> list[str]:
    """Labels of the groups; groups with equal labels get the config keys they differ in appended."""
    labels = [g[0].label for g in groups]
    for label in set(labels):
        same = [i for i, other in enumerate(labels) if other == label]
        if len(same) < 2:
            continue
        flats = [groups[i][0].grouping() for i in same]
        keys = sorted({k for f in flats for k in f if len({json.dumps(x.get(k), default=str) for x in flats}) > 1})
        for n, i in enumerate(same):
            shown = ', '.join(f'{k}={flats[n].get(k)}' for k in keys[:3]) + (', …' if len(keys) > 3 else '')
            labels[i] = f'{label} ({shown or f"#{n + 1}"})'
    return labels


def group_runs(runs: Iterable[RunRecord]) -> list[Group]:
    """Runs grouped by configuration (seed aside), in order of first appearance, then the reference groups."""
    grouped: dict[str, list[RunRecord]] = {}
    for run in runs:
        key = json.dumps([run.label, run.grouping()], sort_keys=True, default=str)
        grouped.setdefault(key, []).append(run)
    lists = list(grouped.values())
    groups = [Group(label, members) for label, members in zip(_disambiguated(lists), lists)]
    every = [r for g in lists for r in g]
    for section, label in REFERENCE_SECTIONS.items():
        having = [r for r in every if r.references.get(section)]
        if having:
            groups.append(Group(label, having, section))
    return groups


def _one_convention(runs: list[RunRecord], problems: list[str]) -> tuple[list[RunRecord], Optional[float]]:
    """Keep the runs of the most common SSIM ``data_range``; each other run is one line in ``problems``."""
    if not runs:
        return runs, None
    common = Counter(r.ssim_data_range for r in runs).most_common(1)[0][0]
    for run in runs:
        if run.ssim_data_range != common:
            problems.append(f'{run.path / "config.py"}: scored with evaluation.ssim_data_range = '
                            f'{run.ssim_data_range:g}, the other runs with {common:g}: runs scored on different '
                            f'metric conventions are not put in one table (report them separately); left out')
    return [r for r in runs if r.ssim_data_range == common], common


def _metric_header(task: Optional[str], metric: str, ours: Optional[float], paper: bool) -> str:
    name = METRIC_NAMES.get(metric, metric) if task else metric
    text = f'{TASK_NAMES.get(task, task)} {name}' if task else name
    if metric == 'ssim':
        theirs = PAPER_CONVENTIONS['ssim']['data_range']
        if not paper:
            text += f' (data_range {ours:g})' if ours is not None else ''
        elif ours is None:
            text += f' (paper: data_range {theirs:g})'
        elif ours != theirs:
            text += f' (ours: data_range {ours:g}, paper: {theirs:g})'
    return text


NOTES = ['n: runs (seeds) in the row; a cell is the mean ± sample standard deviation (n − 1) over them, '
         f'with its own n when fewer runs scored it; {MISSING}: no value']


def _runs_table(groups: list[Group], convention: Optional[float]) -> tuple[Table, list[tuple[str, str]]]:
    tasks = list(dict.fromkeys(t for g in groups for t in g.tasks()))
    found = {m for g in groups for r in g.runs for scores in g.scores(r).values() for m in scores}
    metrics = [m for m in METRIC_ORDER if m in found] + sorted(found - set(METRIC_ORDER))
    header = ['task', 'model', 'n', *[_metric_header(None, m, convention, paper=False) for m in metrics]]
    rows = []
    for task in tasks:
        for group in groups:
            if task in group.tasks():
                stats = [group.stat(task, m) for m in metrics]
                rows.append([task, group.label, str(group.size),
                             *[s.text(group.size) if s else MISSING for s in stats]])
    notes = NOTES + ['reference predictors: their rows come from the runs\' own results.json sections '
                     '(evaluation.copy_last, evaluation.train_mean), averaged over the runs that have them']
    if convention is not None:
        notes.append(f'SSIM with data_range {convention:g} on [0, 1] frames (docs/metrics.md); custom field tasks use '
                     'their test split\'s range')
    return Table('Runs', header, rows, notes), [(t, m) for t in tasks for m in metrics]


def _paper_table(kind: str, groups: list[Group], convention: Optional[float]):
    spec = TABLES[kind]
    columns = list(spec['columns'])
    lines = paper_lines(kind)
    header = ['model', 'n', 'source', *[_metric_header(t, m, convention, paper=True) for t, m in columns]]
    rows, matched = [], {}
    used: set[int] = set()
    for index, group in enumerate(groups):
        stats = [group.stat(t, m) for t, m in columns]
        rows.append([group.label, str(group.size), 'reference' if group.is_reference else 'ours',
                     *[s.text(group.size) if s else MISSING for s in stats]])
        if group.is_reference:
            continue
        run = group.runs[0]
        found = next((i for i, line in enumerate(lines) if matches(line, run.model, run.tasks, run.features)), None)
        if found is None:
            rows[-1][2] = 'ours (no paper row)'
            continue
        line = matched[index] = lines[found]
        used.add(found)
        published = [line.value(t, m) for t, m in columns]
        rows.append(['', '', line.source, *[str(v) if v is not None else MISSING for v in published]])
        rows.append(['', '', 'Δ ours − paper', *[f'{s.mean - v:+.3g}' if s and v is not None and not math.isnan(s.mean)
                                                 else MISSING for s, v in zip(stats, published)]])
    paper_only = [line for i, line in enumerate(lines) if i not in used]
    for line in paper_only:
        rows.append([line.label, '', line.source,
                     *[str(v) if (v := line.value(t, m)) is not None else MISSING for t, m in columns]])
    notes = NOTES + ['Δ: our mean minus the published number; the paper\'s row is the one of the same model, task set '
                     'and variant (paper_results.py)']
    return Table(spec['title'], header, rows, notes), columns, matched, paper_only


def build_report(patterns: Iterable[str], kind: str = 'runs') -> Report:
    """The report of the runs of ``patterns`` (folders, globs, ``results.json`` files) as table ``kind``."""
    if kind not in TABLE_CHOICES:
        raise UserValueError(f'--table: expected one of {list(TABLE_CHOICES)}, got {kind!r}')
    runs, problems = read_runs(patterns)
    runs, convention = _one_convention(runs, problems)
    if kind != 'runs':
        wanted = {task for task, _ in TABLES[kind]['columns']}
        for run in [r for r in runs if not wanted & set(r.results)]:
            problems.append(f'{run.results_file}: its tasks {sorted(run.results)} are not in Table {kind} '
                            f'({sorted(wanted)}); left out')
        runs = [r for r in runs if wanted & set(r.results)]
    groups = group_runs(runs)
    if kind == 'runs':
        if not groups:
            raise UserValueError('no run to report: ' + ('; '.join(problems) if problems else 'no paths given'))
        table, columns = _runs_table(groups, convention)
        return Report(kind, table, groups, {}, [], columns, problems)
    table, columns, matched, paper_only = _paper_table(kind, groups, convention)
    return Report(kind, table, groups, matched, paper_only, columns, problems)


def render(table: Table, fmt: str = 'md') -> str:
    """The table as markdown (title, table, notes), CSV (header and rows) or a LaTeX ``table``."""
    if fmt == 'md':
        def line(cells):
            return '| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |'
        body = [line(table.header), '|' + '---|' * len(table.header), *[line(r) for r in table.rows]]
        return '\n'.join([f'**{table.title}**', '', *body, '', *[f'- {n}' for n in table.notes]]) + '\n'
    if fmt == 'csv':
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(table.header)
        writer.writerows(table.rows)
        return out.getvalue()
    if fmt == 'latex':
        def cells(row):
            return ' & '.join(latex_escape(c) for c in row) + r' \\'
        spec = 'l' * 3 + 'r' * (len(table.header) - 3)
        lines = [r'\begin{table}', r'\centering', r'\caption{' + latex_escape(table.title) + '}',
                 r'\begin{tabular}{' + spec + '}', r'\hline', cells(table.header), r'\hline',
                 *[cells(r) for r in table.rows], r'\hline', r'\end{tabular}', r'\end{table}']
        return '\n'.join(lines) + '\n'
    raise UserValueError(f'--format: expected one of {list(FORMATS)}, got {fmt!r}')


LATEX_REPLACEMENTS = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#', '_': r'\_',
                      '{': r'\{', '}': r'\}', '~': r'\textasciitilde{}', '^': r'\textasciicircum{}',
                      '±': r'$\pm$', '–': '--', 'Δ': r'$\Delta$', '−': '$-$', '·': r'$\cdot$', '✓': r'$\checkmark$',
                      '✗': r'$\times$', '…': r'\ldots{}'}


def latex_escape(text: str) -> str:
    return ''.join(LATEX_REPLACEMENTS.get(c, c) for c in text)


def default_metric(report: Report) -> str:
    metrics = [m for _, m in report.columns]
    if report.kind == 'runs':
        return next((m for m in ('mse', 'psnr') if m in metrics), metrics[0] if metrics else 'mse')
    return metrics[0]


def save_figure(report: Report, path: str | Path, metric: Optional[str] = None) -> Path:
    """Per-task bars of ``metric`` (default: the table's first, MSE for ``runs``): each group's mean with its
    standard deviation, the paper's matching row beside it (hatched), the reference predictors in grey."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metric = metric or default_metric(report)
    tasks = list(dict.fromkeys(t for t, m in report.columns if m == metric))
    if not tasks:
        raise UserValueError(f'--metric {metric!r}: not a column of this table (columns: '
                             f'{sorted({m for _, m in report.columns})})')
    series = []  # (label, {task: (value, error)}, colour, hatch)
    colours = plt.get_cmap('tab10')
    ours = [g for g in report.groups if not g.is_reference]
    for index, group in enumerate(ours):
        values = {t: (s.mean, s.std) for t in tasks if (s := group.stat(t, metric)) is not None}
        series.append((f'{group.label} (n={group.size})', values, colours(index % 10), ''))
        line = report.matches.get(report.groups.index(group))
        if line is not None:
            series.append((line.source, {t: (v, 0.0) for t in tasks if (v := line.value(t, metric)) is not None},
                           colours(index % 10), '//'))
    for offset, line in enumerate(report.paper_only if not ours else []):
        series.append((f'{line.label} ({line.source})',
                       {t: (v, 0.0) for t in tasks if (v := line.value(t, metric)) is not None},
                       colours((offset + len(ours)) % 10), '//'))
    greys = ('0.55', '0.8')
    for index, group in enumerate(g for g in report.groups if g.is_reference):
        series.append((group.label, {t: (s.mean, s.std) for t in tasks if (s := group.stat(t, metric)) is not None},
                       greys[index % 2], ''))
    series = [s for s in series if s[1]]
    figure, axes = plt.subplots(1, len(tasks), figsize=(1.2 + 2.0 * len(tasks), 3.2 + 0.22 * len(series)),
                                squeeze=False)
    width = 0.8 / max(len(series), 1)
    arrow = '↓' if metric in LOWER_IS_BETTER else '↑'
    for axis, task in zip(axes[0], tasks):
        for index, (label, values, colour, hatch) in enumerate(series):
            if task in values:
                value, error = values[task]
                axis.bar(index * width, value, width, yerr=error or None, color=colour, hatch=hatch,
                         edgecolor='black' if hatch else colour, linewidth=0.5, capsize=2, label=label)
        axis.set_title(f'{TASK_NAMES.get(task, task)}', fontsize=9)
        axis.set_xticks([])
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel(f'{METRIC_NAMES.get(metric, metric)} {arrow}', fontsize=9)
    handles = {label: handle for axis in axes[0] for handle, label in zip(*axis.get_legend_handles_labels())}
    figure.legend(handles.values(), handles.keys(), loc='lower center', ncol=1, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.22 * len(series) / (3.2 + 0.22 * len(series)) + 0.02, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
