"""The CSV log of a work dir, kept across resumes: ``logs/metrics.csv`` grows, it is never replaced.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a resumed run lost
every row written before the crash. This one appends; when resuming, its first write drops the rows
of the steps that the run is about to redo (logged after the checkpoint, before the crash), so no
step appears twice.
"""
from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to the existing file (header included) instead of deleting it."""

    def __init__(self, log_dir: str, resuming: bool = False) -> None:
        self.resuming = resuming
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, 'r', newline='') as file:
                self.metrics_keys = next(csv.reader(file), [])

    def save(self) -> None:
        if self.resuming and self.metrics and self._fs.isfile(self.metrics_file_path):
            first = min(int(row['step']) for row in self.metrics)
            with self._fs.open(self.metrics_file_path, 'r', newline='') as file:
                kept = [row for row in csv.DictReader(file) if row.get('step') and float(row['step']) < first]
            with self._fs.open(self.metrics_file_path, 'w', newline='') as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
        if self.metrics:
            self.resuming = False
        super().save()


class RunCSVLogger(CSVLogger):
    """``CSVLogger`` writing through :class:`AppendingWriter` (``resuming``: the run continues a checkpoint)."""

    def __init__(self, *args, resuming: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._resuming = resuming

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingWriter(log_dir=self.log_dir, resuming=self._resuming)
        return self._experiment
