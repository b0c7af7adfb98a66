"""Multi-process training and sharded evaluation: a real 2-process CPU run (gloo) through tools/train.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openstl_unistd.datasets.datamodule import MultiTaskDataModule
from openstl_unistd.datasets.sampler import ShardSampler
from openstl_unistd.tasks import DEMO_TASKS, TASK_SETS

from .test_training import TINY

ROOT = Path(__file__).resolve().parents[1]
DEMO = [DEMO_TASKS[name] for name in TASK_SETS['multi_demo']]


@pytest.mark.parametrize('size,world', [(15, 2), (16, 2), (3, 4), (10, 3)])
def test_shards_are_disjoint_contiguous_and_cover_the_set_without_padding(size, world):
    shards = [list(ShardSampler(size, rank, world)) for rank in range(world)]
    assert sum(shards, []) == list(range(size))
    assert all(len(s) == len(list(ShardSampler(size, r, world))) for r, s in enumerate(shards))


def test_each_rank_evaluates_its_own_part_of_every_task(tmp_path):
    class Trainer:
        def __init__(self, rank):
            self.global_rank, self.world_size = rank, 2
            self.strategy = type('Strategy', (), {'root_device': torch.device('cpu')})()

    seen = {}
    for rank in (0, 1):
        module = MultiTaskDataModule(DEMO, tmp_path, {spec.name: dict(num_samples=7) for spec in DEMO},
                                     val_batch_size=3)
        module.trainer = Trainer(rank)
        for split, loaders in (('val', module.val_dataloader()), ('test', module.test_dataloader())):
            for spec, loader in zip(DEMO, loaders):
                seen.setdefault((split, spec.name), []).append(
                    [round(float(x.sum()), 5) for batch in loader for x in batch['x']])
    for (split, task), (first, second) in seen.items():
        assert len(first) + len(second) == 7 and not set(first) & set(second), (split, task)


def python_env():
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def test_two_process_run_trains_the_same_task_on_both_ranks_and_tests_like_one_process(tmp_path):
    """``--devices 2`` with no strategy flag: exit 0, same task on both ranks at every step, disjoint
    samples, and sharded test metrics equal to a single-process ``tools/test.py`` of the checkpoint."""
    options = {**TINY, 'data.steps_per_epoch': 3, 'data.val_batch_size': 3, 'trainer.accelerator': 'cpu',
               'data.datasets.demo_digits.num_samples': 15}
    arguments = ['-c', str(ROOT / 'configs/unistd/demo.py'), '--data-root', str(tmp_path / 'data'),
                 '--cfg-options', *[f'{k}={v}' for k, v in options.items()]]
    env = python_env()
    env['BATCH_LOG_DIR'] = str(tmp_path / 'batches')
    run = subprocess.run([sys.executable, str(ROOT / 'tests/ddp_recorder.py'), *arguments, '--devices', '2',
                          '--work-dir', str(tmp_path / 'ddp')], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    assert 'Starting with 2 processes' in run.stderr + run.stdout

    first, second = (json.loads((tmp_path / 'batches' / f'rank{r}.json').read_text()) for r in (0, 1))
    assert len(first) == len(second) == 6
    for (epoch, step, task, samples), (epoch2, step2, task2, samples2) in zip(first, second):
        assert (epoch, step, task) == (epoch2, step2, task2)
        assert len(samples) == len(samples2) == 4 and not set(samples) & set(samples2)

    sharded = json.loads((tmp_path / 'ddp' / 'results.json').read_text())
    single = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'), *arguments,
                             '--work-dir', str(tmp_path / 'one'), '--ckpt', str(tmp_path / 'ddp/checkpoints/best.ckpt')],
                            capture_output=True, text=True, cwd=ROOT, env=python_env(), timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    reference = json.loads((tmp_path / 'one' / 'results.json').read_text())
    assert sharded.keys() == reference.keys() and {'results', 'copy_last_frame'} <= sharded.keys()
    assert sharded['ranks'] == reference['ranks']                       # the same checkpoint's ranks
    assert sharded['checkpoint'] == reference['checkpoint']             # both name the file they scored
    assert sharded['checkpoint']['path'] == str((tmp_path / 'ddp/checkpoints/best.ckpt').resolve())
    for part in set(sharded) - {'ranks', 'checkpoint'}:
        assert sharded[part].keys() == reference[part].keys() == {spec.name for spec in DEMO}
        for task, scores in sharded[part].items():
            # per-sample metrics are float32 over other batches (a shard's vs one process's): an SSIM near 0
            # can differ in its 7th significant digit, so 1e-6 absolute as well as relative
            assert scores == pytest.approx(reference[part][task], rel=1e-6, abs=1e-6), (part, task)
