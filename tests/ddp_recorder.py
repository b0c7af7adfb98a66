"""``tools/train.py`` with a callback that records, per rank, every training batch's task and samples.

Run as a script (Lightning's DDP launcher re-runs this file for the other ranks):
``BATCH_LOG_DIR=DIR python tests/ddp_recorder.py <tools/train.py arguments>`` writes ``DIR/rank<r>.json``,
a list of ``[epoch, batch index, task, [sum of each sample's input]]``.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import lightning as L

from openstl_unistd.engine import experiment
from openstl_unistd.engine.cli import run_tool

ROOT = Path(__file__).resolve().parents[1]


class BatchLog(L.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        sums = [round(float(x.double().sum()), 6) for x in batch['x']]
        self.rows.append([trainer.current_epoch, batch_idx, batch['task'], sums])

    def on_train_end(self, trainer, module):
        folder = Path(os.environ['BATCH_LOG_DIR'])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'rank{trainer.global_rank}.json').write_text(json.dumps(self.rows))


def build_trainer(*args, _original=experiment.build_trainer, **kwargs):
    trainer = _original(*args, **kwargs)
    trainer.callbacks.insert(0, BatchLog())
    return trainer


if __name__ == '__main__':
    experiment.build_trainer = build_trainer
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools' / 'train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    sys.exit(run_tool(tool.main))
