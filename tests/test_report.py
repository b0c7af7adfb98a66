"""tools/report.py: runs' metrics as in their results.json, labelled from their configs, the paper's numbers beside
them, mean ± std over seeds, the same numbers in every format, and one line per run it cannot use."""
import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from mmengine.config import Config

from openstl_unistd.engine.config import load_config
from openstl_unistd.engine.experiment import train
from openstl_unistd.engine.paper_results import ROWS, TABLES, paper_value
from openstl_unistd.engine.report import build_report, render, save_figure
from openstl_unistd.engine.run_records import read_run

from .tools import ROOT, run

DEMO_TASKS = ('demo_digits', 'demo_advection', 'demo_traffic')
SHORT = {'data.batch_size': 2, 'data.val_batch_size': 4, 'data.steps_per_epoch': 2, 'trainer.max_epochs': 1,
         'trainer.enable_progress_bar': False, 'trainer.limit_val_batches': 1, 'evaluation.figures': False,
         **{f'data.datasets.{task}.num_samples': 4 for task in DEMO_TASKS}}
TINY_UNISTD = {'model.backbone_kwargs.depth': 1, 'model.hidden_channels': 8}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two tiny trained runs on the demo tasks, in folders named after the *other* model: UniSTD in
    ``tau_run``, TAU in ``unistd_run`` (labels must come from the configs)."""
    root = tmp_path_factory.mktemp('runs')
    made = {}
    for folder, config, extra in (('tau_run', 'configs/unistd/demo.py', TINY_UNISTD),
                                  ('unistd_run', 'configs/baselines/demo_tau.py', {})):
        train(load_config(ROOT / config, {**SHORT, **extra}), root / folder, data_root=str(root / 'data'))
        made[folder] = root / folder
    return made


def results_of(folder):
    return json.loads((Path(folder) / 'results.json').read_text())


def fake_run(folder, config, results, options=None, seed=None, **sections):
    """A run folder as tools/train.py leaves it, without training: the resolved config and a results.json."""
    cfg = load_config(ROOT / config, options)
    if seed is not None:
        cfg.seed = seed
    folder.mkdir(parents=True)
    cfg.dump(str(folder / 'config.py'))
    (folder / 'results.json').write_text(json.dumps({'results': results, **sections}))
    return folder


def copy_run(source, target, seed=None, shift=0.0, **config_changes):
    """A copy of a run with another seed (or config values) and every result shifted by ``shift``."""
    shutil.copytree(source, target)
    cfg = Config.fromfile(str(target / 'config.py'))
    if seed is not None:
        cfg.seed = seed
    cfg.merge_from_dict(config_changes)
    cfg.dump(str(target / 'config.py'))
    data = results_of(target)
    data['results'] = {t: {m: v + shift for m, v in s.items()} for t, s in data['results'].items()}
    (target / 'results.json').write_text(json.dumps(data))
    return target


def row_of(table, *first):
    found = [r for r in table.rows if tuple(r[:len(first)]) == first]
    assert len(found) == 1, (first, [r[:3] for r in table.rows])
    return dict(zip(table.header, found[0]))


def test_the_report_holds_each_runs_metrics_as_in_its_results_json(runs):
    report = build_report([str(p) for p in runs.values()], 'runs')
    assert report.problems == []
    labels = {'tau_run': 'UniSTD · demo tasks · backbone vit_tiny_patch16_224 depth=1 · random init',
              'unistd_run': 'TAU · demo tasks'}
    for folder, label in labels.items():
        results = results_of(runs[folder])['results']
        assert set(results) == set(DEMO_TASKS)
        for task, scores in results.items():
            row = row_of(report.table, task, label)
            assert row['n'] == '1'
            for metric in ('mse', 'mae', 'rmse', 'psnr'):
                assert row[metric] == f'{scores[metric]:.4g}'
            assert row['ssim (data_range 1)'] == f'{scores["ssim"]:.4g}'
    copy_last = results_of(runs['tau_run'])['copy_last_frame']['demo_traffic']['mse']
    assert row_of(report.table, 'demo_traffic', 'copy last frame')['mse'].startswith(f'{copy_last:.4g} ± ')


def test_two_seeds_give_mean_sample_std_and_n(runs, tmp_path):
    source = runs['tau_run']
    first = copy_run(source, tmp_path / 'a', seed=11)
    second = copy_run(source, tmp_path / 'b', seed=12, shift=0.5)
    report = build_report([str(first), str(second)], 'runs')
    a = results_of(first)['results']['demo_digits']['mse']
    b = results_of(second)['results']['demo_digits']['mse']
    row = row_of(report.table, 'demo_digits', report.groups[0].label)
    assert row['n'] == '2'
    assert b == pytest.approx(a + 0.5)
    assert row['mse'] == f'{(a + b) / 2:.4g} ± {abs(a - b) / math.sqrt(2):.2g}'


def test_the_papers_numbers_sit_beside_the_matching_run_with_the_difference(tmp_path):
    assert paper_value('2', 'Ours 10 Tasks', 'taxibj', 'psnr') == 39.6
    ours = fake_run(tmp_path / 'mine', 'configs/unistd/multi10.py',
                    {'taxibj': {'psnr': 38.1, 'ssim': 0.97}, 'sevir': {'csi_m': 0.45}})
    tau = fake_run(tmp_path / 'tau', 'configs/baselines/tau/multi3.py', {'kth': {'psnr': 18.0, 'ssim': 0.4}})
    report = build_report([str(ours), str(tau)], '2')
    table = report.table
    assert row_of(table, 'UniSTD · 10 tasks', '1', 'ours')['TaxiBJ PSNR'] == '38.1'
    paper = row_of(table, '', '', 'paper: Table 2 "Ours 10 Tasks"')
    assert paper['TaxiBJ PSNR'] == '39.6'
    assert paper['TaxiBJ SSIM (ours: data_range 1, paper: 2)'] == '0.98'
    assert paper['ENSO Nino3.4 corr.'] == '0.72'
    assert row_of(table, '', '', 'Δ ours − paper', '-1.5')['SEVIR CSI'] == '+0.04'
    tau_rows = [r for r in table.rows if r[0] == 'TAU · 3 tasks (kitti, traffic4cast, kth)']
    assert [r[2] for r in tau_rows] == ['ours']
    kth = table.header.index('KTH PSNR')
    following = table.rows[table.rows.index(tau_rows[0]) + 1]
    assert (following[2], following[kth]) == ('paper: Table 2 "TAU 3 Tasks"', '17.4')
    unmatched = [r for r in table.rows if r[2] == 'paper: Table 2 "TAU 3 Tasks"' and r[0]]
    assert len(unmatched) == 3  # the other three TAU task sets, paper only


def test_ablation_runs_are_labelled_and_matched_from_their_configs(tmp_path):
    scores = {task: {'psnr': 30.0, 'ssim': 0.9} for task in ('bair', 'kth', 'cityscapes', 'taxibj')}
    no_temporal = fake_run(tmp_path / 'x', 'configs/unistd/ablations/no_temporal.py', scores)
    no_moe = fake_run(tmp_path / 'y', 'configs/unistd/ablations/no_moe.py', scores)
    random_init = fake_run(tmp_path / 'z', 'configs/unistd/ablations/init_random.py', scores)
    assert read_run(no_temporal).label == 'UniSTD · 4 tasks (bair, kth, cityscapes, taxibj) · no temporal module'
    assert read_run(no_moe).departures == ('one expert', 'fixed ranks', 'no temporal module')
    assert read_run(random_init).label == 'UniSTD · 3 tasks (bair, kth, cityscapes) · random init'
    plain_tau = fake_run(tmp_path / 'w', 'configs/baselines/tau/multi3.py', scores, {'method': 'multitask'})
    assert read_run(plain_tau).label == 'TAU · 3 tasks (kitti, traffic4cast, kth) · multitask method'
    table4 = build_report([str(no_temporal), str(no_moe)], '4')
    assert table4.problems == []
    sources = [table4.matches[i].source for i in sorted(table4.matches)]
    assert sources == ['paper: Table 4 "AdaMoE ✓ TAtn. ✗"', 'paper: Table 4 "AdaMoE ✗ TAtn. ✗"']
    table5 = build_report([str(random_init)], '5')
    assert table5.matches[0].source == 'paper: Table 5 "Random"'
    assert row_of(table5.table, '', '', 'Δ ours − paper')['KTH PSNR'] == '+2.9'


def test_the_same_numbers_in_md_csv_and_latex(runs, tmp_path):
    report = build_report([str(copy_run(runs['tau_run'], tmp_path / 'a', seed=1)),
                           str(copy_run(runs['tau_run'], tmp_path / 'b', seed=2, shift=0.25)),
                           str(runs['unistd_run'])], 'runs')
    expected = [report.table.header, *report.table.rows]
    markdown = [line for line in render(report.table, 'md').splitlines() if line.startswith('| ')]
    md_grid = [[c.strip() for c in line.strip('|').split(' | ')] for line in markdown]
    csv_grid = list(csv.reader(io.StringIO(render(report.table, 'csv'))))
    latex = render(report.table, 'latex').splitlines()
    latex_grid = [line.removesuffix(r' \\').split(' & ') for line in latex if line.endswith(r' \\')]

    def numbers(grid):
        return [[re.findall(r'-?\d+(?:\.\d+)?(?:e[+-]?\d+)?', cell) for cell in row] for row in grid]

    assert any('±' in cell for row in expected for cell in row)
    assert md_grid == expected and csv_grid == expected
    assert numbers(latex_grid) == numbers(expected)
    assert any(r'$\pm$' in line for line in latex)


def test_bad_runs_are_one_line_each_and_the_rest_renders(runs, tmp_path, capsys):
    good = fake_run(tmp_path / 'good', 'configs/unistd/multi10.py', {'taxibj': {'psnr': 38.1, 'ssim': 0.97}})
    other = fake_run(tmp_path / 'other', 'configs/unistd/multi10.py', {'taxibj': {'psnr': 37.0, 'ssim': 0.96}},
                     {'evaluation.ssim_data_range': 2.0})
    (tmp_path / 'empty').mkdir()
    corrupt = copy_run(runs['tau_run'], tmp_path / 'corrupt')
    (corrupt / 'results.json').write_text('{"results": {"demo_digits": ')
    third = fake_run(tmp_path / 'third', 'configs/unistd/multi10.py', {'taxibj': {'psnr': 36.0, 'ssim': 0.95}},
                     seed=3)
    status, err = run('report', good, third, other, tmp_path / 'empty', corrupt, runs['unistd_run'], '--table', '2',
                      capsys=None)
    captured = capsys.readouterr()
    assert status == 0
    lines = captured.err.splitlines()
    skipped = [line for line in lines if line.startswith('skipped: ')]
    assert len(skipped) == 4, lines
    assert any(str(other / 'config.py') in line and 'ssim_data_range = 2' in line for line in skipped)
    assert any(f'{tmp_path / "empty"}: no results.json' in line for line in skipped)
    assert any(str(corrupt / 'results.json') in line and 'not valid JSON' in line for line in skipped)
    assert any(str(runs['unistd_run'] / 'results.json') in line and 'not in Table 2' in line for line in skipped)
    assert '| UniSTD · 10 tasks | 2 | ours | 37.05 ± 1.5 |' in captured.out


def test_a_run_without_config_is_labelled_from_its_model_card(runs, tmp_path):
    copy = copy_run(runs['unistd_run'], tmp_path / 'nocfg')
    (copy / 'config.py').unlink()
    record = read_run(copy)
    assert (record.model, record.label, record.seed) == ('TAU', 'TAU · demo tasks', None)
    assert 'labelled from the model card' in record.note
    broken = copy_run(runs['unistd_run'], tmp_path / 'broken')
    (broken / 'checkpoints' / 'best.ckpt').write_bytes(b'not a checkpoint')
    report = build_report([str(broken)], 'runs')
    assert report.problems == [] and len(report.notes) == 1
    assert str(broken / 'checkpoints' / 'best.ckpt') in report.notes[0] and 'config.py alone' in report.notes[0]
    (broken / 'config.py').unlink()
    assert 'no config.py' in build_report([str(broken), str(record.path)], 'runs').problems[0]
    wrong = copy_run(runs['unistd_run'], tmp_path / 'wrong', tasks=['demo_digits', 'demo_traffic'])
    report = build_report([str(wrong), str(runs['tau_run'])], 'runs')
    assert len(report.problems) == 1 and str(wrong) in report.problems[0] and 'model card' in report.problems[0]


def test_runs_of_one_model_with_other_settings_are_told_apart(runs, tmp_path):
    slow = copy_run(runs['unistd_run'], tmp_path / 'slow', **{'optim.lr': 1e-4})
    report = build_report([str(runs['unistd_run']), str(slow)], 'runs')
    labels = [g.label for g in report.groups if not g.is_reference]
    assert labels == ['TAU · demo tasks (optim.lr=0.002)', 'TAU · demo tasks (optim.lr=0.0001)']


def test_the_figure_has_a_panel_per_task(runs, tmp_path):
    import matplotlib.image

    report = build_report([str(p) for p in runs.values()], 'runs')
    path = save_figure(report, tmp_path / 'bars.png')
    assert matplotlib.image.imread(str(path)).shape[1] == 100 * (1.2 + 2.0 * 3)
    with pytest.raises(ValueError, match="'csi_m': not a column"):
        save_figure(report, tmp_path / 'no.png', 'csi_m')


def test_transcribed_cells_read_as_in_the_paper():
    assert paper_value('2', 'TAU 3 Tasks', 'cityscapes', 'ssim', tasks=('taxibj', 'human', 'cityscapes')) == 0.59
    assert paper_value('2', 'Eformer 5 Tasks', 'sevir', 'csi_m') == 0.30
    assert paper_value('2', 'Ours 10 Tasks', 'kitti', 'ssim') == 0.61
    assert paper_value('3', 'SimVPv2', 'cityscapes', 'ssim') == 0.8738
    assert paper_value('6', 'SimVPv1', 'mmnist', 'psnr') == 19.5
    assert paper_value('4', 'AdaMoE ✗ TAtn. ✗', 'kth', 'psnr') == 27.3
    assert paper_value('5', 'LAION', 'kth', 'ssim') == 0.92
    assert paper_value('10', 'UniSTD (Ours)', 'kitti', 'rmse') == 39.49
    # Tables 3 and 4 print each row's difference to their first row; the transcription gives the same differences,
    # but for TaxiBJ's MCVD, printed "36.4 (-2.9)" against Ours' 39.6 (a typo of the paper: kept as printed).
    printed = {('3', 'TAU', 'taxibj'): (-0.3, -0.0012), ('3', 'SimVP', 'taxibj'): (-0.4, -0.0005),
               ('3', 'SimVPv2', 'taxibj'): (-0.4, -0.0013), ('3', 'Earthformer', 'taxibj'): (-0.7, -0.0035),
               ('3', 'MCVD', 'taxibj'): (-3.2, -0.0149), ('3', 'TAU', 'cityscapes'): (-1.0, -0.0214),
               ('3', 'SimVP', 'cityscapes'): (-0.9, -0.0157), ('3', 'SimVPv2', 'cityscapes'): (-0.7, -0.0136),
               ('3', 'MCVD', 'cityscapes'): (-8.3, -0.0709)}
    for (table, model, task), differences in printed.items():
        for metric, difference in zip(('psnr', 'ssim'), differences):
            got = paper_value(table, model, task, metric) - paper_value(table, 'Ours', task, metric)
            assert got == pytest.approx(difference, abs=1e-9), (model, task, metric)
    table4 = {'AdaMoE ✓ TAtn. ✗': (-0.1, -0.5, -0.7, -0.1), 'AdaMoE ✗ TAtn. ✗': (-0.1, -0.9, -1.2, -0.3)}
    for row, differences in table4.items():
        for task, difference in zip(('bair', 'kth', 'cityscapes', 'taxibj'), differences):
            got = paper_value('4', row, task, 'psnr') - paper_value('4', 'AdaMoE ✓ TAtn. ✓', task, 'psnr')
            assert got == pytest.approx(difference, abs=1e-9), (row, task)


def test_every_published_row_fits_its_table():
    for row in ROWS:
        table = next(name for name, spec in TABLES.items() if row['table'] in spec['sources'])
        cells = {(task, metric) for task, scores in row['values'].items() for metric in scores}
        assert cells <= set(TABLES[table]['columns']), row['row']
        if row['table'] == '2':  # each Table 2 row has values for exactly the tasks it was trained on
            assert set(row['values']) == set(row['tasks']), row['row']
