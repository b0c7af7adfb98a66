"""tools/study.py: each run its own tools/train.py process; a finished run is skipped, an interrupted one resumes
(also after a SIGKILL midway), a failed one leaves the others; conflicting folders stop it before anything runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openstl_unistd.engine.report import paper_line_of, paper_lines
from openstl_unistd.engine.study import load_study, plan, resolved_config, run_study, write_planned_config

from .tools import ROOT, run

DEMO_TASKS = ('demo_digits', 'demo_advection', 'demo_traffic')

FAKE_TRAIN = '''
import json, shutil, sys
from pathlib import Path
args = sys.argv[1:]
work = Path(args[args.index('--work-dir') + 1])
work.mkdir(parents=True, exist_ok=True)
with open({calls!r}, 'a') as handle:
    handle.write(json.dumps(args) + '\\n')
shutil.copy(args[args.index('-c') + 1], work / 'config.py')   # tools/train.py dumps the resolved config there
if work.name.startswith('broken'):
    sys.exit(3)
(work / 'results.json').write_text(json.dumps({{'results': {{'demo_digits': {{'mse': 1.0 + len(args)}}}},
                                                'checkpoint': {{'path': 'checkpoints/last.ckpt', 'step': 2}}}}))
'''
"""Stands in for tools/train.py: records its arguments, writes config.py as train.py does and a results.json."""


def study_file(folder: Path, runs: list, cfg_options=None) -> Path:
    path = folder / 'study.py'
    path.write_text(f'runs = {runs!r}\ncfg_options = {cfg_options or {}!r}\nreport = dict(table="runs")\n')
    return path


@pytest.fixture
def fake_train(tmp_path):
    calls = tmp_path / 'calls.jsonl'
    script = tmp_path / 'fake_train.py'
    script.write_text(FAKE_TRAIN.format(calls=str(calls)))

    def recorded():
        if not calls.is_file():
            return {}
        made = [json.loads(line) for line in calls.read_text().splitlines()]
        return {Path(args[args.index('--work-dir') + 1]).name: args for args in made}

    return script, recorded


def test_a_finished_run_is_skipped_and_an_interrupted_one_resumes(tmp_path, fake_train):
    script, recorded = fake_train
    demo = str(ROOT / 'configs/unistd/demo.py')
    path = study_file(tmp_path, [dict(name='a', config=demo, seeds=[0, 1]), dict(name='b', config=demo),
                                 dict(name='broken', config=demo), dict(name='c', config=demo,
                                                                         cfg_options={'optim.lr': 1e-3})])
    study = load_study(path, tmp_path / 'study')
    assert [r.name for r in study.runs] == ['a-seed0', 'a-seed1', 'b-seed42', 'broken-seed42', 'c-seed42']
    runs = {r.name: r for r in study.runs}
    for name in ('a-seed0', 'a-seed1', 'b-seed42'):      # what three earlier sessions left behind
        runs[name].folder.mkdir(parents=True)
        shutil.copy(write_planned_config(runs[name]), runs[name].folder / 'config.py')
    (runs['a-seed0'].folder / 'results.json').write_text(json.dumps({'results': {'demo_digits': {'mse': 3.0}},
                                                                      'unknown_section': [1, 2]}))
    (runs['a-seed1'].folder / 'checkpoints').mkdir()
    (runs['a-seed1'].folder / 'checkpoints' / 'last.ckpt').write_bytes(b'')
    assert [s.status for s in plan(study)] == ['done', 'resume', 'restart', 'new', 'new']

    outcome = run_study(study, script, echo=lambda line: None)
    calls = recorded()
    assert sorted(calls) == ['a-seed1', 'b-seed42', 'broken-seed42', 'c-seed42']   # a-seed0 is not run again
    assert calls['a-seed1'][-1] == '--resume' and calls['b-seed42'][-1] == '--overwrite'
    assert '--resume' not in calls['c-seed42'] and '--overwrite' not in calls['c-seed42']
    assert calls['c-seed42'][:3] == ['-c', str(runs['c-seed42'].planned_config), '--work-dir']
    assert (outcome.trained, outcome.failed) == (['a-seed1', 'b-seed42', 'c-seed42'], ['broken-seed42'])
    report = (study.folder / 'report.md').read_text()
    assert ('| demo_digits | UniSTD · demo tasks · backbone vit_tiny_patch16_224 depth=4 · random init (optim.lr=0.002) '
            '| 3 | 5 ± 1.7 |') in report
    assert '(optim.lr=0.001)' in report and (study.folder / 'report.png').is_file()
    assert [s.status for s in plan(study)] == ['done', 'done', 'done', 'restart', 'done']


def test_a_folder_of_another_config_stops_the_study_before_any_run(tmp_path, fake_train):
    script, recorded = fake_train
    path = study_file(tmp_path, [dict(name='a', config=str(ROOT / 'configs/unistd/demo.py'), seeds=[0, 1])])
    study = load_study(path, tmp_path / 'study', {'optim.lr': 1e-3})
    other = load_study(path, tmp_path / 'study').runs[1]
    other.folder.mkdir(parents=True)
    shutil.copy(write_planned_config(other), other.folder / 'config.py')
    with pytest.raises(FileExistsError, match=r'run a-seed1: .*a-seed1/config.py is another config .*optim\.lr'):
        run_study(study, script, echo=lambda line: None)
    assert recorded() == {}


@pytest.mark.parametrize('entry, message', [
    (dict(name='a', config='missing.py'), "config 'missing.py' not found"),
    (dict(name='a', config='CONFIG', seed=[1]), r"runs\[0\]: unknown key\(s\) \['seed'\]"),
    (dict(name='a b', config='CONFIG'), "run name 'a b-seed42'"),
    (dict(name='a', config='CONFIG', seeds=['x']), 'seeds must be a non-empty list of integers'),
])
def test_bad_study_configs_are_one_line_naming_the_file(tmp_path, capsys, entry, message):
    entry = {k: str(ROOT / 'configs/unistd/demo.py') if v == 'CONFIG' else v for k, v in entry.items()}
    path = study_file(tmp_path, [entry])
    status, err = run('study', '-c', path, '--plan', capsys=capsys)
    assert status == 2
    assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
    assert str(path) in err
    assert __import__('re').search(message, err), err


def test_a_run_killed_midway_resumes_and_a_finished_study_is_skipped(tmp_path):
    """The real tools/train.py: SIGKILL while it trains, then the study resumes that run from its last checkpoint."""
    options = {'model.backbone_kwargs.depth': 1, 'model.hidden_channels': 8, 'data.batch_size': 2,
               'data.val_batch_size': 4, 'data.steps_per_epoch': 16, 'trainer.max_epochs': 1,
               'trainer.checkpoint_every_n_steps': 1, 'trainer.limit_val_batches': 1, 'trainer.limit_test_batches': 1,
               'evaluation.figures': False, 'evaluation.train_mean_samples': 4,
               **{f'data.datasets.{task}.num_samples': 4 for task in DEMO_TASKS}}
    path = study_file(tmp_path, [dict(name='unistd', config=str(ROOT / 'configs/unistd/demo.py'), seeds=[0])], options)
    folder = tmp_path / 'study'
    run_dir = folder / 'unistd-seed0'
    command = [sys.executable, str(ROOT / 'tools/study.py'), '-c', str(path), '--work-dir', str(folder),
               '--data-root', str(tmp_path / 'data')]
    study = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (run_dir / 'checkpoints' / 'last.ckpt').is_file():
        assert study.poll() is None, study.stdout.read()
        assert time.monotonic() < deadline, 'no checkpoint after 300 s'
        time.sleep(0.05)
    trainer = int((run_dir / '.lock').read_text().split()[1])       # "pid N on host, ...": the train.py process
    assert trainer != study.pid
    os.kill(trainer, signal.SIGKILL)
    output = study.communicate(timeout=300)[0]
    assert study.returncode == 1, output
    assert 'unistd-seed0: failed (killed by signal 9)' in output
    assert not (run_dir / 'results.json').exists()

    assert [s.status for s in plan(load_study(path, folder))] == ['resume']
    status, _ = run('study', '-c', path, '--work-dir', folder, '--data-root', tmp_path / 'data')
    assert status == 0
    log = (run_dir / 'train.log').read_text()
    assert log.count('# tools/study.py') == 2 and 'resume unistd-seed0' in log
    assert 'Restoring states from the checkpoint path at' in log.split('resume unistd-seed0')[1]
    results = json.loads((run_dir / 'results.json').read_text())
    assert set(results['results']) == set(DEMO_TASKS)

    status, _ = run('study', '-c', path, '--work-dir', folder)
    assert status == 0
    assert (run_dir / 'train.log').read_text() == log                # skipped: train.py not started again
    assert 'UniSTD · demo tasks' in (folder / 'report.md').read_text()


STUDIES = sorted((ROOT / 'configs/studies').glob('*.py'))


@pytest.mark.parametrize('path', STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_plans_its_runs(path, tmp_path, capsys):
    assert run('study', '-c', path, '--work-dir', tmp_path / 'study', '--plan')[0] == 0
    out = capsys.readouterr().out
    study = load_study(path, tmp_path / 'study')
    assert out.count(': new\n') == len(study.runs) >= 3


@pytest.mark.parametrize('name, table', [('paper_table2', '2'), ('paper_table4', '4'), ('paper_table5', '5')])
def test_a_paper_study_runs_every_row_of_its_table_once_with_its_cost(name, table, tmp_path):
    study = load_study(ROOT / 'configs/studies' / f'{name}.py', tmp_path)
    assert study.table == table
    reproduced = [paper_line_of(resolved_config(run).to_dict(), table) for run in study.runs]
    assert None not in reproduced
    assert sorted(line.source + line.label for line in reproduced) == sorted(
        line.source + line.label for line in paper_lines(table))
    for entry in study.runs:
        assert {'peak_gib', 'steps', 'step_s'} <= set(entry.cost), entry.name
