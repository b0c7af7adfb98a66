"""Task specifications: the one vocabulary that models, datasets and configs share.

A task maps ``T`` past frames to ``T'`` future frames of shape ``(C, H, W)``. Its encoder depth
``n`` sets how often the task encoder halves the frame size, and with it the token grid the
shared Transformer sees (docs/method.md#task-table, paper Table 8).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

from .errors import UserTypeError, UserValueError, check_known_keys

IMAGE_METRICS = ('mse', 'mae', 'rmse', 'psnr', 'ssim')
SEVIR_METRICS = ('mse', 'mae', 'csi')
ENSO_METRICS = ('mse', 'mae', 'nino')


@dataclass(frozen=True)
class TaskSpec:
    """Shapes and metrics of one spatiotemporal forecasting task.

    Attributes:
        name: unique task name, used as the key everywhere (model heads, datasets, results).
        input_frames: T, number of past frames given to the model.
        output_frames: T', number of future frames to predict.
        channels: C, channels per frame.
        height, width: H, W of a frame.
        encoder_depth: n, number of stride-2 blocks of the task encoder (and decoder).
        metrics: names of the metrics reported for this task.
    """

    name: str
    input_frames: int
    output_frames: int
    channels: int
    height: int
    width: int
    encoder_depth: int
    metrics: tuple[str, ...] = IMAGE_METRICS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserValueError(f'task name must be a non-empty string, got {self.name!r}')
        for field in ('input_frames', 'output_frames', 'channels', 'height', 'width', 'encoder_depth'):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserValueError(f"task '{self.name}': {field} must be a positive integer, got {value!r}")
        object.__setattr__(self, 'metrics', tuple(self.metrics))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(T, C, H, W)`` of one input sample."""
        return (self.input_frames, self.channels, self.height, self.width)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(T', C, H, W)`` of one target sample."""
        return (self.output_frames, self.channels, self.height, self.width)

    @property
    def token_grid(self) -> tuple[int, int]:
        """``(H', W')``: the frame size after ``encoder_depth`` stride-2 convolutions."""
        return halved_sizes(self.height, self.width, self.encoder_depth)[-1]


def halved_sizes(height: int, width: int, times: int) -> list[tuple[int, int]]:
    """Sizes ``[(H, W), ..., (H', W')]`` through ``times`` stride-2, padding-1, 3×3 convolutions.

    Each step maps a size s to ceil(s / 2), as ``Conv2d(kernel_size=3, stride=2, padding=1)`` does.
    """
    sizes = [(height, width)]
    for _ in range(times):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def _task(name, t_in, t_out, c, h, w, n, metrics=IMAGE_METRICS) -> TaskSpec:
    return TaskSpec(name, t_in, t_out, c, h, w, n, metrics)


PAPER_TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    _task('taxibj', 4, 4, 2, 32, 32, 2),
    _task('traffic4cast', 9, 3, 8, 128, 112, 3),
    _task('mmnist', 10, 10, 1, 64, 64, 3),
    _task('bair', 2, 10, 3, 64, 64, 2),
    _task('human', 4, 4, 3, 256, 256, 4),
    _task('kth', 10, 10, 1, 128, 128, 3),
    _task('cityscapes', 2, 5, 3, 128, 128, 3),
    _task('kitti', 10, 10, 3, 128, 160, 3),
    _task('sevir', 13, 12, 1, 384, 384, 4, SEVIR_METRICS),
    _task('enso', 12, 14, 1, 24, 48, 1, ENSO_METRICS),
)}
"""The ten tasks of the paper (docs/method.md#task-table; paper Tables 1 and 8)."""

DEMO_TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    _task('demo_digits', 5, 5, 1, 32, 32, 2),
    _task('demo_advection', 12, 12, 1, 32, 32, 2),
    _task('demo_traffic', 4, 4, 2, 32, 32, 2),
    _task('demo_wave', 4, 12, 1, 32, 32, 2),
)}
"""Generated tasks that need no download (``configs/unistd/demo.py``; ``demo_wave``, a signed field, is
held out of the demo for studies of signed fields)."""

KNOWN_TASKS: dict[str, TaskSpec] = {**PAPER_TASKS, **DEMO_TASKS}

TaskLike = Union[str, TaskSpec, Mapping]


def get_task(name: str) -> TaskSpec:
    """The known task called ``name``; a clear error listing the known names otherwise."""
    try:
        return KNOWN_TASKS[name]
    except KeyError:
        raise UserValueError(f'unknown task {name!r}; known tasks: {", ".join(KNOWN_TASKS)}') from None


def resolve_task(entry: TaskLike) -> TaskSpec:
    """Turn a config entry into a :class:`TaskSpec`.

    ``entry`` is a known task name, a ``TaskSpec``, or a mapping. A mapping whose ``name`` is a
    known task overrides that task's fields (e.g. ``dict(name='kth', output_frames=20)``); any
    other mapping must give every field of a new task.
    """
    if isinstance(entry, TaskSpec):
        return entry
    if isinstance(entry, str):
        return get_task(entry)
    if isinstance(entry, Mapping):
        fields = dict(entry)
        if 'name' not in fields:
            raise UserValueError(f'task entry {fields!r} has no "name"')
        valid = {f.name for f in dataclasses.fields(TaskSpec)}
        check_known_keys(fields, valid, f"task '{fields['name']}'")
        if fields['name'] in KNOWN_TASKS:
            return dataclasses.replace(KNOWN_TASKS[fields['name']], **fields)
        missing = sorted(valid - set(fields) - {'metrics'})
        if missing:
            raise UserValueError(f"task '{fields['name']}' is not a known task, so it must give {missing}")
        return TaskSpec(**fields)
    raise UserTypeError(f'a task entry must be a name, a TaskSpec or a dict, got {type(entry).__name__}')


def resolve_tasks(entries: Iterable[TaskLike]) -> list[TaskSpec]:
    """Resolve a list of task entries; names must be unique."""
    tasks = [resolve_task(e) for e in entries]
    names = [t.name for t in tasks]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserValueError(f'task names must be unique, repeated: {duplicated}')
    if not tasks:
        raise UserValueError('the task list is empty')
    return tasks


TASK_SETS: dict[str, tuple[str, ...]] = {
    'multi10': tuple(PAPER_TASKS),
    'multi7': ('bair', 'taxibj', 'human', 'cityscapes', 'kth', 'traffic4cast', 'kitti'),
    'multi4': ('bair', 'kth', 'cityscapes', 'taxibj'),
    'multi3': ('kitti', 'traffic4cast', 'kth'),
    'multi_demo': ('demo_digits', 'demo_advection', 'demo_traffic'),
}
"""The task sets of the paper's experiments (Tables 2, 4, 7) and of the demo, by name (configs and the
OpenSTL plug-in's dataset names)."""
