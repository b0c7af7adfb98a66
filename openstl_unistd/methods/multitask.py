"""Joint multi-task training of any model ``model(x, task) → y`` (UniSTD, multi-task baselines).

One task per batch (the data module's sampler decides which); loss is the MSE of that task's
normalized targets. Optimization is manual so that subclasses can add optimizers (UniSTD's
ranks) without Lightning's automatic loop: every batch makes one AdamW step on the weights,
and the learning rate follows a warm-up + cosine schedule indexed by that step count.

The logic lives in :class:`MultiTaskTraining`, a mixin that uses only the LightningModule API, so
that it runs over ``lightning.pytorch`` (our tools) and over ``pytorch_lightning`` (OpenSTL's
``BaseExperiment``, see ``openstl_plugin.py``) alike.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from ..core.metrics import ForecastMetrics
from ..core.scaling import Scaling
from ..core.schedules import warmup_cosine
from ..core.state_diff import StateDiff
from ..errors import UserValueError
from ..modules.spatiotemporal_block import renamed_legacy_keys
from ..tasks import KNOWN_TASKS, TaskSpec
from .options import TrainingOptions
from .registry import register_method


class NonFiniteLossError(FloatingPointError):
    """A training loss is NaN or infinite: the run stops before that step updates any weight."""


def summed_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the DDP ranks (unchanged in a single process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


def computed(metric):
    """``metric.compute()`` (states summed over ranks), also on a rank whose shard gave it no update."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*was called before the ``update`` method')
        return metric.compute()


def checkpoint_mismatch(checkpoint: Mapping, tasks: Sequence[str],
                        model_state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """One line saying how a checkpoint differs from the model of ``tasks``, or ``None`` when it fits.

    The checkpoint's tasks are those it recorded (``checkpoint['tasks']``) or, for older files, the
    task names that appear in its parameter names.
    """
    state = {k: v for k, v in checkpoint.get('state_dict', {}).items() if k.startswith('model.')}
    ours = {k: v for k, v in model_state.items() if k.startswith('model.')}
    saved = checkpoint.get('tasks')
    if saved is None:
        names = set(tasks) | set(KNOWN_TASKS)
        found = {part for key in state for part in key.split('.') if part in names}
        saved = [t for t in tasks if t in found] + sorted(found - set(tasks))
    saved = list(saved)
    if saved != list(tasks):
        missing = [t for t in tasks if t not in saved]
        extra = [t for t in saved if t not in tasks]
        detail = '; '.join(part for part in (f'not in the checkpoint: {missing}' if missing else '',
                                              f'not in the config: {extra}' if extra else '') if part)
        return (f'it was trained on tasks {saved}, the config has {list(tasks)} '
                f'({detail or "same tasks in another order"})')
    diff = StateDiff.of(ours, state)
    return f'same tasks, but another model: {diff.describe("the checkpoint")}' if diff else None


class MultiTaskTraining:
    """Training, validation and test of a multi-task forecasting model, mixed into a LightningModule.

    A concrete method calls :meth:`init_training`, then :meth:`init_method` with its own options, in its
    ``__init__`` (so does the OpenSTL plug-in on OpenSTL's LightningModule). Hooks for subclasses:
    :meth:`extra_loss`, :meth:`active_optimizers`, :meth:`after_optimizer_steps`,
    :meth:`prepare_batch` and :meth:`scaling`.
    """

    def init_training(self, model: nn.Module, tasks: Sequence[TaskSpec], options: TrainingOptions) -> None:
        self.automatic_optimization = False
        self.model = model
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.options = options
        self.val_losses = nn.ModuleDict({name: MeanMetric() for name in self.task_names})
        self.val_copy_last = nn.ModuleDict({name: MeanMetric() for name in self.task_names})
        self.test_metrics = nn.ModuleDict()
        self.copy_last_metrics = nn.ModuleDict()
        self.mean_metrics = nn.ModuleDict()
        self.train_means: dict[str, torch.Tensor] = {}
        self.test_results: dict[str, dict[str, float]] = {}
        self.copy_last_results: dict[str, dict[str, float]] = {}
        self.train_mean_results: dict[str, dict[str, float]] = {}
        self._saved: dict[str, dict[str, list]] = {}

    def init_method(self) -> None:
        """Set up what the method adds, from its own options (its ``method`` dict's keys and config sections,
        :func:`~.registry.register_method`); after :meth:`init_training`. Nothing here."""

    # ---- optimization -------------------------------------------------------------------------

    def weight_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters updated by AdamW."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.weight_parameters(), lr=self.options.lr,
                                      weight_decay=self.options.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return [optimizer], [scheduler]

    def _lr_factor(self, step: int) -> float:
        """Multiplier of ``lr`` at weight step ``step``. Before the training data is loaded (the
        scheduler's first call) the epoch length is unknown; the warm-up's first value needs none."""
        batches = self.trainer.num_training_batches if self._trainer is not None else 1
        steps_per_epoch = int(batches) if math.isfinite(batches) and batches > 0 else 1
        max_epochs = self.trainer.max_epochs if self._trainer is not None and self.trainer.max_epochs else 1
        o = self.options
        total = int(max_epochs * steps_per_epoch)
        warmup = int(o.warmup_epochs * steps_per_epoch)
        return warmup_cosine(step, total, warmup, o.lr, o.warmup_lr, o.min_lr) / o.lr

    def weight_optimizer(self):
        optimizers = self.optimizers()
        return optimizers[0] if isinstance(optimizers, (list, tuple)) else optimizers

    def active_optimizers(self) -> list:
        """Optimizers stepped on this batch."""
        return [self.weight_optimizer()]

    def extra_loss(self, batch: Mapping, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        """Terms added to the task loss of this batch (named, for logging)."""
        return {}

    def after_optimizer_steps(self) -> None:
        """Called after every training step's optimizer updates."""

    def prepare_batch(self, batch) -> dict:
        """The batch as ``{'x', 'y', 'task'}`` (our data modules already give that)."""
        return batch

    # ---- steps --------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.model(x, task)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        batch = self.prepare_batch(batch)
        task = batch['task']
        pred = self(batch['x'], task)
        task_loss = F.mse_loss(pred, batch['y'])
        extras = self.extra_loss(batch, pred)
        loss = task_loss + sum(extras.values()) if extras else task_loss
        self.check_finite(loss, {'task loss': task_loss, **extras}, task, batch_idx)
        optimizers = self.active_optimizers()
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(loss)
        if self.options.grad_clip:
            self.clip_gradients(self.weight_optimizer(), gradient_clip_val=self.options.grad_clip,
                                gradient_clip_algorithm='norm')
        for optimizer in optimizers:
            optimizer.step()
        self.after_optimizer_steps()
        scheduler = self.lr_schedulers()
        (scheduler[0] if isinstance(scheduler, list) else scheduler).step()

        batch_size = batch['x'].shape[0]
        self.log(f'train/loss_{task}', task_loss, prog_bar=True, batch_size=batch_size)
        self.log('train/loss', loss, prog_bar=False, batch_size=batch_size)
        for name, value in extras.items():
            self.log(f'train/{name}', value, batch_size=batch_size)
        self.log('train/lr', self.weight_optimizer().param_groups[0]['lr'], batch_size=batch_size)
        return loss

    def check_finite(self, loss: torch.Tensor, terms: Mapping[str, torch.Tensor], task: str, batch_idx: int) -> None:
        """Stop with :class:`NonFiniteLossError` naming the task, the step and the non-finite terms when the
        loss of any rank is not finite, before backward: no weight (and so no checkpoint) takes it in.
        Every rank takes the same decision (one all-reduce of a flag under DDP)."""
        finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world > 1:
            finite = finite.clone()
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if bool(finite):
            return
        bad = {name: float(value.detach()) for name, value in terms.items() if not torch.isfinite(value.detach())}
        where = (f'{", ".join(f"{name} = {value}" for name, value in bad.items())}' if bad
                 else 'finite here, not finite on another rank')
        raise NonFiniteLossError(
            f'non-finite training loss on task {task!r} at epoch {self.current_epoch}, batch {batch_idx} of the epoch '
            f'(loss = {float(loss.detach())}; {where}); stopped before this step\'s update, so the checkpoints hold '
            f'the last finite weights. Lower optim.lr, set optim.grad_clip, or check the task\'s data.')

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        batch = self.prepare_batch(batch)
        task = batch['task']
        pred = self(batch['x'], task)
        losses = F.mse_loss(pred, batch['y'], reduction='none').mean(dim=(1, 2, 3, 4))
        self.val_losses[task].update(losses)
        copied = batch['x'][:, -1:].expand_as(batch['y'])
        self.val_copy_last[task].update(F.mse_loss(copied, batch['y'], reduction='none').mean(dim=(1, 2, 3, 4)))
        return losses.mean()

    def _updated_anywhere(self, metrics: Mapping[str, MeanMetric]) -> dict[str, bool]:
        """Which metrics got an update on some rank (all ranks must agree on what they compute, since
        ``compute`` sums the states over ranks, and each rank evaluates a disjoint shard)."""
        if not metrics:
            return {}
        counts = torch.tensor([float(m.update_count) for m in metrics.values()], device=self.device)
        return {name: bool(count > 0) for name, count in zip(metrics, summed_over_ranks(counts))}

    def on_validation_epoch_end(self) -> None:
        """Logs ``val/loss_<task>`` (model-range MSE), ``val/loss`` (their mean) and ``val/score``, the mean over
        tasks of MSE / copy-last-frame MSE, which ``best.ckpt`` follows: no task's scale dominates it."""
        losses, ratios = [], []
        for name, updated in self._updated_anywhere(self.val_losses).items():
            metric, reference = self.val_losses[name], self.val_copy_last[name]
            if updated:
                value, copy_last = computed(metric), computed(reference)
                losses.append(value)
                ratios.append(value / copy_last if copy_last > 0 else value)
                self.log(f'val/loss_{name}', value, prog_bar=False, sync_dist=True)  # equal on all ranks already
            metric.reset()
            reference.reset()
        if losses:
            self.log('val/loss', torch.stack(losses).mean(), prog_bar=True, sync_dist=True)
            self.log('val/score', torch.stack(ratios).mean(), prog_bar=True, sync_dist=True)

    # ---- checkpoints --------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint['tasks'] = list(self.task_names)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Rename the tensors of a checkpoint saved before the ViT blocks' parts were adopted
        (``backbone.blocks.N.block.…``); refuse, in one line, a checkpoint of other tasks or of another model
        (before its weights load)."""
        if 'state_dict' in checkpoint:
            checkpoint['state_dict'] = renamed_legacy_keys(checkpoint['state_dict'])
        problem = checkpoint_mismatch(checkpoint, self.task_names, self.state_dict())
        if problem:
            path = getattr(self._trainer, 'ckpt_path', None) if self._trainer is not None else None
            name = f'checkpoint {str(path)!r}' if path else 'the checkpoint'
            raise UserValueError(f'{name} does not fit the config: {problem}')

    # ---- test ---------------------------------------------------------------------------------

    def scaling(self, task: str) -> Scaling:
        """The :class:`~openstl_unistd.core.scaling.Scaling` of a task's test data (the identity without a data
        module that knows it)."""
        datamodule = getattr(self.trainer, 'datamodule', None)
        if hasattr(datamodule, 'scaling'):
            return datamodule.scaling(task, 'test')
        return Scaling()

    def train_mean(self, task: str) -> torch.Tensor:
        """The per-pixel training mean ``(C, H, W)`` of ``task`` in model range (from the data module)."""
        datamodule = getattr(self.trainer, 'datamodule', None)
        if not hasattr(datamodule, 'train_mean'):
            raise UserValueError('evaluation.train_mean needs a data module with training data (train_mean)')
        return datamodule.train_mean(task, self.options.train_mean_samples)

    def metric_options(self, task: str) -> dict:
        """``scaling`` and ``data_range`` of a task's test metrics (see the data module's)."""
        datamodule = getattr(self.trainer, 'datamodule', None)
        if hasattr(datamodule, 'metric_options'):
            return datamodule.metric_options(task, 'test')
        return {'scaling': self.scaling(task), 'data_range': None}

    def on_test_start(self) -> None:
        """One metric accumulator per task, with the test dataset's map to physical values."""
        for spec in self.tasks:
            kwargs = dict(**self.metric_options(spec.name), ssim_data_range=self.options.ssim_data_range,
                          output_frames=spec.output_frames)
            self.test_metrics[spec.name] = ForecastMetrics(spec.metrics, **kwargs).to(self.device)
            if self.options.copy_last:
                self.copy_last_metrics[spec.name] = ForecastMetrics(spec.metrics, **kwargs).to(self.device)
            if self.options.train_mean:
                self.mean_metrics[spec.name] = ForecastMetrics(spec.metrics, **kwargs).to(self.device)
                self.train_means[spec.name] = self.train_mean(spec.name).to(self.device)
        self._saved = {name: {'inputs': [], 'trues': [], 'preds': []} for name in self.task_names}

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        batch = self.prepare_batch(batch)
        task, x, y = batch['task'], batch['x'], batch['y']
        pred = self(x, task)
        self.test_metrics[task].update(pred, y)
        if self.options.copy_last:
            self.copy_last_metrics[task].update(x[:, -1:].expand_as(y), y)
        if self.options.train_mean:
            self.mean_metrics[task].update(self.train_means[task].to(y.dtype).expand_as(y), y)
        self._keep_for_saving(task, x, y, pred)

    def _keep_for_saving(self, task: str, x, y, pred) -> None:
        wanted = max(self.options.save_preds, 1 if self.options.figures else 0)
        kept = self._saved[task]
        have = sum(len(a) for a in kept['inputs'])
        if have < wanted:
            take = wanted - have
            for key, values in (('inputs', x), ('trues', y), ('preds', pred)):
                kept[key].append(values[:take].detach().float().cpu().numpy())

    def on_test_epoch_end(self) -> None:
        self.test_results = {name: computed(self.test_metrics[name])
                             for name, updated in self._updated_anywhere(self.test_metrics).items() if updated}
        self.copy_last_results = {name: computed(self.copy_last_metrics[name])
                                 for name, updated in self._updated_anywhere(self.copy_last_metrics).items() if updated}
        self.train_mean_results = {name: computed(self.mean_metrics[name])
                                   for name, updated in self._updated_anywhere(self.mean_metrics).items() if updated}
        for task, scores in self.test_results.items():
            for metric, value in scores.items():
                self.log(f'test/{task}/{metric}', float(value), rank_zero_only=True)  # reduced over ranks
        if self.trainer.is_global_zero and self.options.save_dir:
            self.write_artifacts(Path(self.options.save_dir))

    def saved_arrays(self, task: str) -> Optional[dict[str, np.ndarray]]:
        """The kept test inputs, targets and predictions of ``task`` (model range), or ``None``."""
        kept = self._saved.get(task)
        if not kept or not kept['inputs']:
            return None
        return {key: np.concatenate(values) for key, values in kept.items()}

    def write_artifacts(self, save_dir: Path) -> None:
        """``saved/<task>/{inputs,trues,preds}.npy`` and ``figures/<task>.png`` under ``save_dir``."""
        from ..core.visualization import save_prediction_grid

        for task in self.task_names:
            arrays = self.saved_arrays(task)
            if arrays is None:
                continue
            if self.options.save_preds:
                folder = save_dir / 'saved' / task
                folder.mkdir(parents=True, exist_ok=True)
                for key, array in arrays.items():
                    np.save(folder / f'{key}.npy', array[:self.options.save_preds])
                metric = self.test_metrics[task]
                (folder / 'normalization.json').write_text(json.dumps(metric.scaling.as_dict()))
            if self.options.figures:
                metric = self.test_metrics[task]
                field = metric.data_range is not None
                shown = {k: metric.physical(torch.as_tensor(v[0])).numpy() if field else v[0] for k, v in arrays.items()}
                save_prediction_grid(shown['inputs'], shown['trues'], shown['preds'],
                                     save_dir / 'figures' / f'{task}.png', title=task, field=field)


@register_method('multitask')
class MultiTaskMethod(MultiTaskTraining, L.LightningModule):
    """:class:`MultiTaskTraining` as a ``lightning.pytorch`` module (our tools).

    Args:
        model: ``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)``.
        tasks: the task specs, in the data module's order (dataloader ``i`` is ``tasks[i]``).
        **options: :class:`TrainingOptions` fields.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], **options) -> None:
        L.LightningModule.__init__(self)
        self.init_training(model, tasks, TrainingOptions(**options))
        self.save_hyperparameters(ignore=['model', 'tasks'])
