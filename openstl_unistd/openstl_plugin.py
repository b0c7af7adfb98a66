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

- ``openstl.core.metrics.cal_ssim`` made to work with scikit-image ≥ 0.20 (OpenSTL's call passes the
  removed ``multichannel=True`` and no ``data_range``) with one SSIM convention for every method of
  the run, ours and OpenSTL's: ``data_range =`` :data:`SSIM_DATA_RANGE`, OpenSTL's published one;
- ``BaseExperiment.test`` of a test-only run (OpenSTL's ``tools/test.py``): a log file and the
  saved arrays in a folder of their own, beside the training run's (:func:`make_experiment_test`).

Registration is idempotent and leaves every OpenSTL method and dataset as it was. Our methods are
built by the same factory and options schema as ``tools/train.py`` (:func:`plugin_model_options`);
a key of an OpenSTL config that neither OpenSTL nor our method knows is refused by name.
Their optimizers and schedule are ours (OpenSTL's cosine scheduler fails with Lightning 2.6).
"""
from __future__ import annotations

import logging
import math
import os.path as osp
import time
from typing import Mapping, NamedTuple, Optional

import numpy as np
import torch

from .core.scaling import Scaling
from .datasets.datamodule import MultiTaskDataModule
from .datasets.multitask import MultiTaskDataset
from .errors import UserValueError, check_known_keys
from .methods.options import TrainingOptions, section_keys
from .methods.registry import check_method
from .models.registry import create_model, model_arguments
from .modules.pretrained import PretrainedWeightsNotFoundError
from .tasks import KNOWN_TASKS, TASK_SETS, TaskSpec, resolve_tasks

INSTALL_HINT = (
    'OpenSTL is not installed. It is not on PyPI (the PyPI package "openstl" is an unrelated STL-mesh '
    'library); install it from its repository: git clone https://github.com/chengtan9907/OpenSTL && '
    'pip install -e OpenSTL "timm<=1.0.11" (see docs/openstl.md).')

SINGLE_TASK_DATASETS = ('cityscapes', 'traffic4cast', 'sevir', 'enso', 'demo_digits', 'demo_advection', 'demo_traffic')
"""Tasks OpenSTL has no loader for, served by our loaders under these names: four paper tasks and the
generated demo tasks (no download: OpenSTL's own methods can be compared on them per task)."""

DATASET_NAMES = tuple(TASK_SETS) + SINGLE_TASK_DATASETS

OPENSTL_TASK_DEPTH = {'mfmnist': 3, 'mmnist_cifar': 3, 'kth20': 3, 'kth40': 3, 'kitticaltech': 3}
"""UniSTD encoder depth for OpenSTL datasets that are not among our tasks (ours use their own)."""

METRICS = ('mse', 'mae', 'rmse', 'ssim', 'psnr', 'snr')
"""OpenSTL metric names our metrics compute (LPIPS is left out), in the order of OpenSTL's metric line
(``openstl.core.metrics.metric`` writes mse, mae, rmse, ssim, psnr, snr, lpips, whatever the list's order)."""

SSIM_DATA_RANGE = 2.0
"""SSIM's ``data_range`` for every method scored inside OpenSTL, ours and OpenSTL's own: the value behind
OpenSTL's published tables (its call gave none, and scikit-image < 0.20 took the float dtype's range,
[-1, 1]). ``tools/train.py`` scores with 1, the range of [0, 1] frames (docs/metrics.md)."""

SSIM_CONVENTION = (f"SSIM data_range = {SSIM_DATA_RANGE:g} for every method of this run (OpenSTL's published "
                   "convention; openstl_unistd's tools/train.py uses 1, docs/metrics.md)")
"""The log line printed before every metric line that holds SSIM."""

TOOLS_ONLY_KEYS = {
    **{key: "an evaluation option of openstl_unistd's tools/train.py; inside OpenSTL every method is scored the "
            "same way (docs/openstl.md)" for key in section_keys(TrainingOptions, 'evaluation') if key != 'save_preds'},
    **{key: "a section of openstl_unistd's tools/train.py configs; OpenSTL configs are flat: give its keys at the "
            "top level (docs/openstl.md)" for key in ('model', 'optim', 'data', 'trainer', 'evaluation', 'tasks')},
}
"""Keys of our own configs that an OpenSTL config cannot take, with the reason given when one is set."""

_registered = False


def _openstl():
    """OpenSTL's modules that the plug-in touches; ``ImportError`` with install instructions otherwise."""
    try:
        import openstl.api
        import openstl.core.metrics
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
    where our paper task is 10 → 10); its encoder depth is our task's when the name is one of ours,
    else the depth that brings the longer side to at most 16 tokens. Its metrics are OpenSTL's list
    for the dataset (``args['metrics']``) less LPIPS, then those of our task OpenSTL has no name for
    (e.g. SEVIR's CSI).
    """
    if dataname in TASK_SETS:
        return resolve_tasks(TASK_SETS[dataname])
    t, c, h, w = (int(v) for v in args['in_shape'])
    known = KNOWN_TASKS.get(dataname)
    depth = known.encoder_depth if known else OPENSTL_TASK_DEPTH.get(
        dataname, max(1, math.ceil(math.log2(max(h, w) / 16))))
    listed = [m for m in args.get('metrics', METRICS) if m in METRICS]
    extra = [m for m in known.metrics if m not in METRICS and m != 'lpips'] if known else []
    metrics = tuple(listed + extra) or (known.metrics if known else METRICS[:2])
    return resolve_tasks([dict(name=dataname, input_frames=int(args['pre_seq_length']),
                               output_frames=int(args['aft_seq_length']), channels=c, height=h, width=w,
                               encoder_depth=depth, metrics=metrics)])


class OpenSTLMethod(NamedTuple):
    """One of our methods under an OpenSTL ``-m`` name: a registered method (``methods/registry.py``) training a
    registered model type (``models/registry.py``). Its option keys, its training logic and its model's
    arguments are read from the two registries."""

    spelling: str
    """The class-name spelling ``-m`` takes too, as OpenSTL lists its own (``-m SimVP`` / ``simvp``)."""
    method: str
    model_type: str
    fixed_model_options: Mapping = {}
    """Model options the name fixes (``multitask_tau``: SimVP with TAU's translator)."""
    options_key: Optional[str] = None
    """The OpenSTL config key holding the model options as one dict (Earthformer's nest); ``None``: the
    model's arguments are top-level keys."""


OPENSTL_METHODS = {
    'unistd': OpenSTLMethod('UniSTD', 'unistd', 'UniSTD'),
    'multitask_simvp': OpenSTLMethod('MultiTask_SimVP', 'multitask', 'SimVP'),
    'multitask_tau': OpenSTLMethod('MultiTask_TAU', 'tau', 'SimVP', {'model_type': 'tau'}),
    'multitask_earthformer': OpenSTLMethod('MultiTask_Earthformer', 'multitask', 'Earthformer',
                                           options_key='earthformer'),
}
"""Our OpenSTL method names (``-m``; the names of OpenSTL's published configs, docs/openstl.md)."""

PLUGIN_KEYS = ('datasets', 'sampling', 'save_preds')
"""Our keys every method takes: per-task loader options, joint sampling, saved test samples."""


def method_keys(method: str) -> tuple[str, ...]:
    """The keys of our ``method``'s own options in an OpenSTL config: its registered method's ``method``
    options and sections (the same keys as in our configs, at the top level)."""
    entry = check_method(OPENSTL_METHODS[method].method)
    return (*entry.options, *entry.sections)


def model_option_names(method: str) -> tuple[str, ...]:
    """The model options an OpenSTL config gives our ``method`` as top-level keys: the arguments of its
    registered model type (or the one key that holds them, :attr:`OpenSTLMethod.options_key`)."""
    plugin = OPENSTL_METHODS[method]
    return (plugin.options_key,) if plugin.options_key else model_arguments(plugin.model_type)


def plugin_model_options(method: str, args: Mapping) -> dict:
    """``model`` options (``type`` and constructor arguments, as a config's ``model`` dict) of our ``method``
    from OpenSTL's flat config: every key of :func:`model_option_names` that is set (not ``None``)."""
    plugin = OPENSTL_METHODS[method]
    if plugin.options_key:
        options = dict(args.get(plugin.options_key) or {})
    else:
        options = {name: args[name] for name in model_option_names(method) if args.get(name) is not None}
    return {'type': plugin.model_type, **options, **plugin.fixed_model_options}


def openstl_keys(args: Mapping) -> set[str]:
    """Keys OpenSTL itself puts into a method's arguments: its parser's, its defaults', the dataset's
    parameters and what ``BaseExperiment`` adds."""
    from openstl.datasets import dataset_parameters
    from openstl.utils.parser import create_parser, default_parser

    keys = {action.dest for action in create_parser()._actions} | set(default_parser())
    keys |= set(dataset_parameters.get(args.get('dataname'), {}))
    return keys | {'steps_per_epoch', 'test_mean', 'test_std', 'save_dir', 'metrics', 'in_shape', 'tasks'}


def check_plugin_keys(method: str, args: Mapping) -> None:
    """A :class:`~openstl_unistd.errors.UserKeyError` naming every key of the OpenSTL config that neither
    OpenSTL nor ``method`` takes (a typo would otherwise be ignored), with the reason for our own
    configs' keys that have no place here."""
    ours = {*model_option_names(method), *method_keys(method), *PLUGIN_KEYS}
    if not set(args) - ours:
        return
    source = f"OpenSTL config {args.get('config_file')!r}" if args.get('config_file') else 'OpenSTL arguments'
    check_known_keys(args, ours | openstl_keys(args), f"{source} for method '{method}'", reasons=TOOLS_ONLY_KEYS,
                     valid=f"the method's own keys are {sorted(ours)} (docs/openstl.md), the others are OpenSTL's")


def build_plugin_model(method: str, tasks: list[TaskSpec], args: Mapping) -> torch.nn.Module:
    """Our model for an OpenSTL method name, built as ``tools/train.py`` builds it (``create_model``) from
    the options of OpenSTL's config; a missing weights file says what to set in that config."""
    check_plugin_keys(method, args)
    try:
        options = plugin_model_options(method, args)
        return create_model(options.pop('type'), tasks, **options)
    except PretrainedWeightsNotFoundError as error:
        raise error.set_with("pretrained = '<path to the file>' in the OpenSTL config (-c FILE; docs/openstl.md).") \
            from None


def metric_line(scores: Mapping[str, float]) -> str:
    """OpenSTL's metric line (``mse:…, mae:…``): OpenSTL's order for its metrics, then ours (CSI, Nino3.4)."""
    order = {name: i for i, name in enumerate(METRICS)}
    names = sorted(scores, key=lambda name: order.get(name, len(order)))
    return ', '.join(f'{name}:{scores[name]}' for name in names)


class OpenSTLMethodMixin:
    """Glue between OpenSTL's ``Base_method`` and our training mixins.

    Built from OpenSTL's keyword hyper-parameters; reads OpenSTL's ``(x, y)`` batches as well as our
    ``{'x', 'y', 'task'}`` ones; logs ``train_loss``/``val_loss`` for OpenSTL's callbacks; prints
    OpenSTL's metric line and writes ``<save_dir>/saved/`` as OpenSTL does (``save_dir`` read from the
    hyper-parameters, as OpenSTL's methods read it).
    """

    plugin_method = ''

    def setup_plugin(self, args: Mapping) -> None:
        options = TrainingOptions(
            lr=float(args.get('lr') or 1e-3), weight_decay=float(args.get('weight_decay') or 0.0),
            warmup_epochs=float(args.get('warmup_epoch') or 0), warmup_lr=float(args.get('warmup_lr') or 1e-5),
            min_lr=float(args.get('min_lr') or 1e-6), grad_clip=args.get('clip_grad'),
            ssim_data_range=SSIM_DATA_RANGE, save_preds=int(args.get('save_preds') or 10 ** 9), figures=False)
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

    def scaling(self, task: str) -> Scaling:
        """Per-task scaling of our datasets (their loaders'); OpenSTL's own datasets give one scalar mean/std
        (0/1 for images), anything else counts as the identity."""
        dataset = self.trainer.datamodule.test_loader.dataset
        per_task = getattr(dataset, 'datasets', None)
        source = per_task[task] if per_task is not None else getattr(dataset, 'source', None)
        if source is not None:
            return source.scaling
        mean, std = self.openstl_normalization
        scalar = all(np.size(v) == 1 for v in (mean, std)) and mean is not None and std is not None
        return Scaling.of(mean, std, f'OpenSTL dataset of task {task!r}') if scalar else Scaling()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if not self.trainer.is_global_zero:
            return
        from openstl.utils import check_dir, print_log

        single = len(self.task_names) == 1
        if any('ssim' in scores for scores in self.test_results.values()):
            print_log(SSIM_CONVENTION)
        save_dir = self.hparams.get('save_dir')
        for task, scores in self.test_results.items():
            line = metric_line(scores)
            print_log(line if single else f'{task}: {line}')
            arrays = self.saved_arrays(task)
            if arrays is None or not save_dir:
                continue
            folder = check_dir(osp.join(save_dir, 'saved') if single else osp.join(save_dir, 'saved', task))
            arrays['metrics'] = np.array([scores.get('mae', np.nan), scores.get('mse', np.nan)])
            for key in ('metrics', 'inputs', 'trues', 'preds'):
                np.save(osp.join(folder, key + '.npy'), arrays[key])

    def write_artifacts(self, save_dir) -> None:
        """Nothing beyond OpenSTL's ``saved/`` (written in :meth:`on_test_epoch_end`)."""


def _method_classes(base_method: type) -> dict[str, type]:
    """Our methods as subclasses of OpenSTL's ``Base_method`` (defined once OpenSTL is importable): the
    training logic of each registered method on OpenSTL's LightningModule, set up from OpenSTL's keyword
    hyper-parameters by its ``init_method``."""

    def make(name: str, plugin: OpenSTLMethod) -> type:
        entry = check_method(plugin.method)

        def __init__(self, **args):
            base_method.__init__(self, **args)
            self.setup_plugin(args)
            self.init_method(**{key: args[key] for key in (*entry.options, *entry.sections)
                                if args.get(key) is not None})

        return type(plugin.spelling, (OpenSTLMethodMixin, *entry.training, base_method),
                    {'__init__': __init__, 'plugin_method': name, '__module__': __name__,
                     '__doc__': f"{plugin.spelling} for OpenSTL: method '{plugin.method}' "
                                f"({', '.join(t.__name__ for t in entry.training)}) on OpenSTL's Base_method."})

    return {name: make(name, plugin) for name, plugin in OPENSTL_METHODS.items()}


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
            raise UserValueError(f"dataset '{dataname}': OpenSTL's --dist is not supported for our datasets; "
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
            raise UserValueError(f"dataset '{dataname}' holds {len(tasks)} tasks; OpenSTL's single-task method "
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

def _method_names() -> tuple[str, ...]:
    return tuple(OPENSTL_METHODS)


def make_create_parser(original):
    """OpenSTL's ``create_parser`` with our method names (both spellings) and dataset names among the choices."""

    def create_parser():
        parser = original()
        for action in parser._actions:
            if action.dest == 'method' and action.choices is not None:
                names = [n for name, plugin in OPENSTL_METHODS.items() for n in (name, plugin.spelling)]
                action.choices = list(action.choices) + [n for n in names if n not in action.choices]
            elif action.dest == 'dataname' and action.choices is not None:
                action.choices = list(action.choices) + [n for n in DATASET_NAMES if n not in action.choices]
        return parser

    create_parser.wraps_openstl = original
    return create_parser


def flops_table(model: torch.nn.Module) -> str:
    """Per-task FLOPs of one sample, counted as fvcore and OpenSTL's model info count them (one
    multiply-add is one FLOP)."""
    from .engine.analysis import multiply_accumulates

    counts = {task: multiply_accumulates(model, task) for task in model.tasks}
    rows = [f'| {task} | {count / 1e9:.3f} G ({count:,}) |' for task, count in counts.items()]
    return '\n'.join(["| task | FLOPs per sample (fvcore's count: a multiply-add is one FLOP) |", '|---|---|', *rows])


def make_display_method_info(original):
    """Method info for our methods: the model, its parameters and per-task FLOPs as OpenSTL counts them
    (OpenSTL's version raises on method names it does not know)."""

    def display_method_info(self, args):
        if args.method not in _method_names():
            return original(self, args)
        from .models.parameters import count_parameters

        count = count_parameters(self.method.model)
        info = (f'{self.method.model!r}\ntasks: {self.method.task_names}\n'
                f'parameters: {count.total:,} (trainable {count.trainable:,}, frozen {count.frozen:,})\n')
        return info, flops_table(self.method.model) + '\n', '', '-' * 80 + '\n'

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


def make_structural_similarity(original):
    """scikit-image's ``structural_similarity`` as OpenSTL calls it (``cal_ssim(pred, true,
    multichannel=True)`` on ``(W, H, C)`` frames), for scikit-image ≥ 0.20, where ``multichannel`` is
    gone (the channels were read as a third spatial axis: "win_size exceeds image extent") and a float
    image's ``data_range`` is no longer 2 by default: channels last, ``data_range`` =
    :data:`SSIM_DATA_RANGE` unless given."""

    def structural_similarity(im1, im2, *, multichannel: bool = False, data_range=None, **kwargs):
        if multichannel:
            kwargs.setdefault('channel_axis', -1)
        return original(im1, im2, data_range=SSIM_DATA_RANGE if data_range is None else data_range, **kwargs)

    structural_similarity.wraps_openstl = original
    return structural_similarity


def _fix_openstl_ssim(metrics_module) -> None:
    """Let ``openstl.core.metrics.metric`` compute SSIM under today's scikit-image (see
    :func:`make_structural_similarity`); its ``cal_ssim`` is ``None`` when lpips is missing."""
    if hasattr(metrics_module.cal_ssim, 'wraps_openstl'):
        return
    from skimage.metrics import structural_similarity

    metrics_module.cal_ssim = make_structural_similarity(structural_similarity)


def make_base_test_epoch_end(original):
    """OpenSTL's test end, with :data:`SSIM_CONVENTION` logged before its metric line when SSIM is in it."""

    def on_test_epoch_end(self):
        if 'ssim' in (self.metric_list or ()) and self.trainer.is_global_zero:
            from openstl.utils import print_log

            print_log(SSIM_CONVENTION)
        return original(self)

    on_test_epoch_end.wraps_openstl = original
    return on_test_epoch_end


def make_experiment_test(original):
    """``BaseExperiment.test`` that, in a test-only run (OpenSTL's ``tools/test.py``: nothing was trained in
    this process), logs to ``<save_dir>/test_<time>.log`` and saves the arrays under
    ``<save_dir>/test_<time>/saved/``, beside the training run's log and ``saved/``, not over them.
    OpenSTL sets up its log file only when training starts, and saves into ``<save_dir>/saved``."""

    def test(self):
        if self.trainer.state.fn is None and self.trainer.is_global_zero:
            from openstl.utils import output_namespace, print_log

            stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
            for handler in logging.root.handlers[:]:
                logging.root.removeHandler(handler)
            logging.basicConfig(level=logging.INFO, filename=osp.join(self.save_dir, f'test_{stamp}.log'),
                                filemode='a', format='%(asctime)s - %(message)s')
            print_log(output_namespace(self.args))
            tested = (osp.join(self.save_dir, 'checkpoints', 'best.ckpt') if self.args.test
                      else 'the model as initialized (no --test)')
            folder = osp.join(self.save_dir, f'test_{stamp}')
            print_log(f'testing {tested}; arrays saved under {osp.join(folder, "saved")}')
            self.method.hparams.save_dir = folder
        return original(self)

    test.wraps_openstl = original
    return test


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
    _wrap(openstl.api.BaseExperiment, 'test', make_experiment_test)
    _wrap(Base_method, 'on_test_epoch_end', make_base_test_epoch_end)
    _fix_openstl_ssim(openstl.core.metrics)
    _registered = True
