"""Every touch point with OpenSTL, and nothing else: the only module that imports ``openstl``.

OpenSTL (its Lightning branch) has no plug-in mechanism. :func:`register` adds to it, in place:

- methods ``unistd``, ``multitask_simvp`` (``--model_type incepu|gsta``), ``multitask_tau`` and
  ``multitask_earthformer`` to ``openstl.methods.method_maps``;
- datasets: one name per task set of :data:`~openstl_unistd.tasks.TASK_SETS` (``multi10``,
  ``multi7``, ``multi4``, ``multi3``, ``multi_demo``) and the paper tasks OpenSTL lacks
  (``cityscapes``, ``traffic4cast``, ``sevir``, ``enso``) to ``openstl.datasets.dataset_parameters``
  and to ``openstl.datasets.load_data`` (wrapped: every other name goes to OpenSTL's own);
- those names to the closed ``--method``/``--dataname`` choices of ``openstl.utils.create_parser``
  (methods in both spellings, ``unistd`` and ``UniSTD``, as OpenSTL lists its own);
- ``BaseExperiment.display_method_info`` for our methods (OpenSTL's raises on unknown names), and
  ``BaseExperiment._init_trainer`` on machines without a GPU (OpenSTL's hard-codes ``'gpu'``).

Registration is idempotent and leaves every OpenSTL method and dataset as it was. Our methods do
not use the OpenSTL paths that break with current libraries: their optimizers and schedule are
ours (not OpenSTL's cosine scheduler, which fails with Lightning 2.6) and their metrics are ours
(not ``openstl.core.metrics``, whose SSIM call fails with scikit-image ≥ 0.20).
"""
from __future__ import annotations

import math
import os.path as osp
from dataclasses import fields
from typing import Mapping

import numpy as np
import torch

from .datasets.datamodule import MultiTaskDataModule
from .datasets.multitask import MultiTaskDataset
from .methods.multitask import MultiTaskTraining
from .methods.options import DivergenceOptions, RankSearchOptions, TrainingOptions, options_of
from .methods.tau import DivergenceTraining
from .methods.unistd import RankSearchTraining
from .tasks import KNOWN_TASKS, TASK_SETS, TaskSpec, resolve_tasks

INSTALL_HINT = (
    'OpenSTL is not installed. It is not on PyPI (the PyPI package "openstl" is an unrelated STL-mesh '
    'library); install it from its repository: git clone https://github.com/chengtan9907/OpenSTL && '
    'pip install -e OpenSTL "timm<=1.0.11" (see docs/openstl.md).')

SINGLE_TASK_DATASETS = ('cityscapes', 'traffic4cast', 'sevir', 'enso')
"""Paper tasks OpenSTL has no loader for; served by our loaders under these names."""

DATASET_NAMES = tuple(TASK_SETS) + SINGLE_TASK_DATASETS

OPENSTL_TASK_DEPTH = {'mfmnist': 3, 'mmnist_cifar': 3, 'kth20': 3, 'kth40': 3, 'kitticaltech': 3}
"""UniSTD encoder depth for OpenSTL datasets that are not among our tasks (ours use their own)."""

METRICS = ('mse', 'mae', 'rmse', 'psnr', 'ssim', 'snr')
"""OpenSTL metric names our metrics compute (LPIPS is left out)."""

_registered = False


def _openstl():
    """OpenSTL's modules that the plug-in touches; ``ImportError`` with install instructions otherwise."""
    try:
        import openstl.api
        import openstl.datasets
        import openstl.methods
        import openstl.methods.base_method
        import openstl.utils
        import openstl.utils.parser
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    if not hasattr(openstl.methods, 'method_maps') or not hasattr(openstl.datasets, 'dataset_parameters'):
        raise ImportError(f'the installed "openstl" ({getattr(openstl, "__file__", "?")}) is not OpenSTL. {INSTALL_HINT}')
    return openstl


# ---- tasks and models from OpenSTL's hyper-parameter dict ------------------------------------------

def tasks_for(dataname: str, args: Mapping) -> list[TaskSpec]:
    """The tasks of an OpenSTL dataset name: one of our task sets, or one task shaped as OpenSTL gives it.

    A single task takes T, T' and (C, H, W) from OpenSTL's arguments (OpenSTL's ``kth`` is 10 → 20
    where our paper task is 10 → 10); its encoder depth and metrics are our task's when the name is
    one of ours, else the depth that brings the longer side to at most 16 tokens.
    """
    if dataname in TASK_SETS:
        return resolve_tasks(TASK_SETS[dataname])
    t, c, h, w = (int(v) for v in args['in_shape'])
    known = KNOWN_TASKS.get(dataname)
    depth = known.encoder_depth if known else OPENSTL_TASK_DEPTH.get(
        dataname, max(1, math.ceil(math.log2(max(h, w) / 16))))
    metrics = known.metrics if known else (tuple(m for m in args.get('metrics', METRICS) if m in METRICS)
                                           or METRICS[:2])
    return resolve_tasks([dict(name=dataname, input_frames=int(args['pre_seq_length']),
                               output_frames=int(args['aft_seq_length']), channels=c, height=h, width=w,
                               encoder_depth=depth, metrics=metrics)])


def _options(args: Mapping, *names: str) -> dict:
    return {name: args[name] for name in names if args.get(name) is not None}


def build_plugin_model(method: str, tasks: list[TaskSpec], args: Mapping) -> torch.nn.Module:
    """Our model for an OpenSTL method name, with its settings taken from OpenSTL's config dict."""
    from .models import MultiTaskEarthformer, MultiTaskSimVP, UniSTD

    if method == 'unistd':
        return UniSTD(tasks, **_options(args, 'backbone', 'pretrained', 'backbone_kwargs', 'hidden_channels', 'lora',
                                        'temporal', 'inner_channels', 'skip', 'decode'))
    if method in ('multitask_simvp', 'multitask_tau'):
        kind = 'tau' if method == 'multitask_tau' else (args.get('model_type') or 'gsta')
        return MultiTaskSimVP(tasks, model_type=kind, **_options(
            args, 'hid_S', 'hid_T', 'N_S', 'N_T', 'frames', 'mlp_ratio', 'drop', 'drop_path', 'spatio_kernel_enc',
            'spatio_kernel_dec', 'spatial_depths', 'decode'))
    return MultiTaskEarthformer(tasks, **dict(args.get('earthformer') or {}))


class OpenSTLMethodMixin:
    """Glue between OpenSTL's ``Base_method`` and our training mixins.

    Built from OpenSTL's keyword hyper-parameters; reads OpenSTL's ``(x, y)`` batches as well as our
    ``{'x', 'y', 'task'}`` ones; logs ``train_loss``/``val_loss`` for OpenSTL's callbacks; prints
    OpenSTL's metric line and writes ``<save_dir>/saved/`` as OpenSTL does.
    """

    plugin_method = ''

    def setup_plugin(self, args: Mapping) -> None:
        options = TrainingOptions(
            lr=float(args.get('lr') or 1e-3), weight_decay=float(args.get('weight_decay') or 0.0),
            warmup_epochs=float(args.get('warmup_epoch') or 0), warmup_lr=float(args.get('warmup_lr') or 1e-5),
            min_lr=float(args.get('min_lr') or 1e-6), grad_clip=args.get('clip_grad'),
            save_dir=args.get('save_dir'), save_preds=int(args.get('save_preds') or 10 ** 9), figures=False)
        self.init_training(self.model, self.plugin_tasks, options)
        self.openstl_normalization = (args.get('test_mean'), args.get('test_std'))

    def _build_model(self, **args):
        self.plugin_tasks = tasks_for(args['dataname'], args)
        return build_plugin_model(self.plugin_method, self.plugin_tasks, args)

    def prepare_batch(self, batch) -> dict:
        if isinstance(batch, Mapping):
            return batch
        x, y = batch
        return {'x': x, 'y': y, 'task': self.task_names[0]}

    def training_step(self, batch, batch_idx: int):
        loss = super().training_step(batch, batch_idx)
        self.log('train_loss', loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=self.prepare_batch(batch)['x'].shape[0])
        return loss

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0):
        loss = super().validation_step(batch, batch_idx, dataloader_idx)
        self.log('val_loss', loss, on_step=False, on_epoch=True, batch_size=self.prepare_batch(batch)['x'].shape[0])
        return loss

    def normalization(self, task: str):
        """Per-task map of our datasets (numbers, or per-channel ``(C, 1, 1)`` arrays for fields); OpenSTL's
        own datasets give one scalar mean/std (0/1 for images)."""
        dataset = self.trainer.datamodule.test_loader.dataset
        per_task = getattr(dataset, 'datasets', None)
        source = per_task[task] if per_task is not None else getattr(dataset, 'source', None)
        if source is not None:
            return source.mean, source.std
        mean, std = self.openstl_normalization
        scalar = all(np.size(v) == 1 for v in (mean, std)) and mean is not None and std is not None
        return (float(np.asarray(mean).item()), float(np.asarray(std).item())) if scalar else (0.0, 1.0)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if not self.trainer.is_global_zero:
            return
        from openstl.utils import check_dir, print_log

        single = len(self.task_names) == 1
        for task, scores in self.test_results.items():
            line = ', '.join(f'{name}:{value}' for name, value in scores.items())
            print_log(line if single else f'{task}: {line}')
            arrays = self.saved_arrays(task)
            if arrays is None or not self.options.save_dir:
                continue
            folder = check_dir(osp.join(self.options.save_dir, 'saved') if single else
                               osp.join(self.options.save_dir, 'saved', task))
            arrays['metrics'] = np.array([scores.get('mae', np.nan), scores.get('mse', np.nan)])
            for key in ('metrics', 'inputs', 'trues', 'preds'):
                np.save(osp.join(folder, key + '.npy'), arrays[key])

    def write_artifacts(self, save_dir) -> None:
        """Nothing beyond OpenSTL's ``saved/`` (written in :meth:`on_test_epoch_end`)."""


def _method_classes(base_method: type) -> dict[str, type]:
    """Our methods as subclasses of OpenSTL's ``Base_method`` (defined once OpenSTL is importable)."""

    def make(name: str, training: type, setup) -> type:
        def __init__(self, **args):
            base_method.__init__(self, **args)
            self.setup_plugin(args)
            setup(self, args)

        return type(name, (OpenSTLMethodMixin, training, base_method),
                    {'__init__': __init__, 'plugin_method': name.lower(), '__module__': __name__,
                     '__doc__': f'{name} for OpenSTL: {training.__name__} on OpenSTL\'s Base_method.'})

    def rank_search(self, args):
        self.init_rank_search(options_of(RankSearchOptions, args.get('rank_search'), 'rank_search'))

    def divergence(self, args):
        self.init_divergence(DivergenceOptions(**{f.name: float(args[f.name]) for f in fields(DivergenceOptions)
                                                  if args.get(f.name) is not None}))

    def nothing(self, args):
        return None

    return {
        'unistd': make('UniSTD', RankSearchTraining, rank_search),
        'multitask_simvp': make('MultiTask_SimVP', MultiTaskTraining, nothing),
        'multitask_tau': make('MultiTask_TAU', DivergenceTraining, divergence),
        'multitask_earthformer': make('MultiTask_Earthformer', MultiTaskTraining, nothing),
    }


# ---- data ---------------------------------------------------------------------------------------

class OpenSTLTaskSet(MultiTaskDataset):
    """Our tasks as the dataset of OpenSTL's loaders: ``mean``/``std``/``data_name`` are what
    OpenSTL's ``BaseDataModule`` reads (model range: 0 and 1); each task's own map is in ``datasets``."""

    mean, std = 0.0, 1.0

    def __init__(self, datasets, data_name: str) -> None:
        super().__init__(datasets)
        self.data_name = data_name


class OpenSTLSingleTask(torch.utils.data.Dataset):
    """One of our datasets as OpenSTL's methods expect it: ``(x, y)`` samples, ``mean = 0``, ``std = 1``
    (OpenSTL computes metrics in that range); the physical map stays on ``source``."""

    mean, std = 0.0, 1.0

    def __init__(self, source, data_name: str) -> None:
        self.source = source
        self.data_name = data_name

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        return self.source[index]


def make_load_data(original):
    """OpenSTL's ``load_data`` extended with :data:`DATASET_NAMES`; every other name is OpenSTL's."""

    def load_data(dataname, batch_size, val_batch_size, num_workers, data_root, dist=False, **kwargs):
        if dataname not in DATASET_NAMES:
            return original(dataname, batch_size, val_batch_size, num_workers, data_root, dist=dist, **kwargs)
        if dist:
            raise ValueError(f"dataset '{dataname}': OpenSTL's --dist is not supported for our datasets; "
                             'train multi-GPU with openstl_unistd tools/train.py')
        tasks = resolve_tasks(TASK_SETS.get(dataname, (dataname,)))
        module = MultiTaskDataModule(tasks, data_root, kwargs.get('datasets'), batch_size, val_batch_size,
                                     num_workers, sampling=kwargs.get('sampling', 'proportional'),
                                     seed=int(kwargs.get('seed') or 0), pin_memory=torch.cuda.is_available())
        splits = module.check_available(('train', 'val', 'test'))
        if len(tasks) == 1:
            name = tasks[0].name
            loaders = []
            for split, size, shuffle in (('train', batch_size, True), ('val', val_batch_size, False),
                                         ('test', val_batch_size, False)):
                loaders.append(torch.utils.data.DataLoader(
                    OpenSTLSingleTask(splits[split][name], dataname), batch_size=size, shuffle=shuffle,
                    num_workers=num_workers, drop_last=split == 'train'))
            return tuple(loaders)
        method = str(kwargs.get('method', '')).lower()
        if method not in _method_names():
            raise ValueError(f"dataset '{dataname}' holds {len(tasks)} tasks; OpenSTL's single-task method "
                             f"'{method}' cannot train on it: use -m {' or -m '.join(_method_names())}")
        return (module.train_dataloader(),
                module.joint_loader('val', OpenSTLTaskSet(splits['val'], dataname)),
                module.joint_loader('test', OpenSTLTaskSet(splits['test'], dataname)))

    load_data.wraps_openstl = original
    return load_data


def dataset_parameters_of(dataname: str) -> dict:
    """OpenSTL's ``dataset_parameters`` entry: the first task's shapes (a set has several, see its tasks)."""
    tasks = resolve_tasks(TASK_SETS.get(dataname, (dataname,)))
    first = tasks[0]
    return {
        'in_shape': list(first.input_shape), 'pre_seq_length': first.input_frames,
        'aft_seq_length': first.output_frames, 'total_length': first.input_frames + first.output_frames,
        'data_name': dataname, 'metrics': [m for m in first.metrics if m in METRICS] or list(METRICS[:2]),
        'tasks': [t.name for t in tasks],
    }


# ---- parser and experiment --------------------------------------------------------------------------

METHOD_SPELLINGS = {'unistd': 'UniSTD', 'multitask_simvp': 'MultiTask_SimVP', 'multitask_tau': 'MultiTask_TAU',
                    'multitask_earthformer': 'MultiTask_Earthformer'}
"""Our method names and their class-name spellings; ``-m`` takes both, as OpenSTL's ``-m SimVP``/``simvp``
(``BaseExperiment`` lower-cases the name before looking it up)."""


def _method_names() -> tuple[str, ...]:
    return tuple(METHOD_SPELLINGS)


def make_create_parser(original):
    """OpenSTL's ``create_parser`` with our method names (both spellings) and dataset names among the choices."""

    def create_parser():
        parser = original()
        for action in parser._actions:
            if action.dest == 'method' and action.choices is not None:
                names = [n for pair in METHOD_SPELLINGS.items() for n in pair]
                action.choices = list(action.choices) + [n for n in names if n not in action.choices]
            elif action.dest == 'dataname' and action.choices is not None:
                action.choices = list(action.choices) + [n for n in DATASET_NAMES if n not in action.choices]
        return parser

    create_parser.wraps_openstl = original
    return create_parser


def make_display_method_info(original):
    """Method info for our methods (OpenSTL's version raises on names it does not know)."""

    def display_method_info(self, args):
        if args.method not in _method_names():
            return original(self, args)
        from .models.parameters import count_parameters

        count = count_parameters(self.method.model)
        info = (f'{self.method.model!r}\ntasks: {self.method.task_names}\n'
                f'parameters: {count.total:,} (trainable {count.trainable:,}, frozen {count.frozen:,})\n')
        return info, '', '', '-' * 80 + '\n'

    display_method_info.wraps_openstl = original
    return display_method_info


def make_init_trainer(original):
    """OpenSTL's trainer on GPU machines; a CPU trainer where there is none (OpenSTL hard-codes 'gpu')."""

    def _init_trainer(self, args, callbacks, strategy):
        if torch.cuda.is_available():
            return original(self, args, callbacks, strategy)
        from pytorch_lightning import Trainer

        return Trainer(devices=1, max_epochs=args.epoch, accelerator='cpu', callbacks=callbacks)

    _init_trainer.wraps_openstl = original
    return _init_trainer


def _wrap(owner, name: str, make) -> None:
    current = getattr(owner, name)
    if not hasattr(current, 'wraps_openstl'):
        setattr(owner, name, make(current))


def register() -> None:
    """Add our methods and datasets to OpenSTL (idempotent). ``ImportError`` if OpenSTL is missing."""
    global _registered
    openstl = _openstl()
    from openstl.methods.base_method import Base_method

    classes = _method_classes(Base_method) if not _registered else {}
    for name, cls in classes.items():
        openstl.methods.method_maps.setdefault(name, cls)
    for name in DATASET_NAMES:
        openstl.datasets.dataset_parameters.setdefault(name, dataset_parameters_of(name))
    _wrap(openstl.datasets, 'load_data', make_load_data)
    _wrap(openstl.utils.parser, 'create_parser', make_create_parser)
    openstl.utils.create_parser = openstl.utils.parser.create_parser
    _wrap(openstl.api.BaseExperiment, 'display_method_info', make_display_method_info)
    _wrap(openstl.api.BaseExperiment, '_init_trainer', make_init_trainer)
    _registered = True
