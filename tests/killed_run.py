"""``tools/train.py`` killed with SIGKILL right after the first checkpoint it writes in a given epoch.

``python tests/killed_run.py EPOCH <tools/train.py arguments>``: whichever file is saved first at the end of
epoch ``EPOCH`` (``best.ckpt`` or ``last.ckpt``) is written completely, then the process dies as under
``kill -9``, before the other file is written.
"""
import os
import signal
import sys

import torch

from openstl_unistd.engine.cli import run_tool
from openstl_unistd.inference.checkpoint_io import AtomicCheckpointIO

from tools import tool  # noqa: E402  (tests/tools.py, run from the repository root)

torch.set_num_threads(min(2, torch.get_num_threads()))     # as tests/conftest.py: the same arithmetic
KILL_EPOCH = int(sys.argv[1])
save = AtomicCheckpointIO.save_checkpoint


def save_then_die(self, checkpoint, path, storage_options=None):
    save(self, checkpoint, path, storage_options)
    if checkpoint.get('epoch') == KILL_EPOCH:
        os.kill(os.getpid(), signal.SIGKILL)


AtomicCheckpointIO.save_checkpoint = save_then_die
sys.exit(run_tool(tool('train').main, sys.argv[2:]))
