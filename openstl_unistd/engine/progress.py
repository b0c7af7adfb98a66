"""Progress for log files: one plain line every N steps and one per validation, when stdout is no terminal.

Lightning's progress bar redraws one line with carriage returns: in a file or a pipe (``make demo >
log``, SLURM, nohup) that leaves fragments. :class:`PlainProgress` prints whole lines instead::

    step 120/500 (epoch 1/4)  loss demo_digits 0.0213, demo_wave 0.0087  2.41 steps/s  ETA 2m38s
    validation after epoch 1: val/loss 0.0301 (demo_digits 0.0412, demo_wave 0.0190)
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict

import lightning as L

from ..errors import UserValueError


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


class PlainProgress(L.Callback):
    """Prints (rank 0 only) the step, epoch, mean training loss per task since the last line, steps per
    second and the time left every ``every_n_steps`` training steps, and the validation losses."""

    def __init__(self, every_n_steps: int = 50, stream=None) -> None:
        if every_n_steps < 1:
            raise UserValueError(f'trainer.progress_every_n_steps must be a positive integer, got {every_n_steps}')
        self.every_n_steps = every_n_steps
        self.stream = stream
        self._losses: dict[str, list[float]] = defaultdict(list)
        self._since = None
        self._steps_since = 0

    def _print(self, trainer, line: str) -> None:
        if trainer.is_global_zero:
            print(line, file=self.stream or sys.stdout, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        self._since, self._steps_since = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs['loss'] if isinstance(outputs, dict) else outputs
        task = batch.get('task', 'loss') if isinstance(batch, dict) else 'loss'
        if loss is not None:
            self._losses[task].append(float(loss))
        self._steps_since += 1
        per_epoch = int(trainer.num_training_batches) if trainer.num_training_batches != float('inf') else 0
        done = trainer.current_epoch * per_epoch + batch_idx + 1
        if done % self.every_n_steps:
            return
        elapsed = time.perf_counter() - self._since
        rate = self._steps_since / elapsed if elapsed > 0 else float('nan')
        total = per_epoch * (trainer.max_epochs or 0)
        losses = ', '.join(f'{name} {sum(v) / len(v):.4g}' for name, v in sorted(self._losses.items()))
        eta = f'  ETA {_duration((total - done) / rate)}' if total and rate == rate and rate > 0 else ''
        self._print(trainer, f'step {done}/{total or "?"} (epoch {trainer.current_epoch + 1}/{trainer.max_epochs})  '
                             f'loss {losses}  {rate:.2f} steps/s{eta}')
        self._losses.clear()
        self._since, self._steps_since = time.perf_counter(), 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith('val/')}
        if not metrics:
            return
        per_task = ', '.join(f'{k[len("val/loss_"):]} {v:.4g}' for k, v in sorted(metrics.items())
                             if k.startswith('val/loss_'))
        overall = {k: v for k, v in metrics.items() if not k.startswith('val/loss_')}
        head = ', '.join(f'{k} {v:.4g}' for k, v in sorted(overall.items()))
        self._print(trainer, f'validation after epoch {trainer.current_epoch + 1}: {head}'
                             + (f' ({per_task})' if per_task else ''))
        self._since = time.perf_counter()  # validation time is not training speed
