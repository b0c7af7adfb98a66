"""Using a trained model: physical-unit forecasts of any horizon from a checkpoint or an export.

    from openstl_unistd import load_predictor
    predictor = load_predictor('work_dirs/demo/checkpoints/best.ckpt')
    y = predictor.predict(x, 'demo_traffic', horizon=12)      # x (N, T, C, H, W) → y (N, 12, C, H, W), physical units

Horizons beyond the task's ``T'`` are reached by rolling out: each call of the model gets the last
``T`` frames of the inputs followed by what it has predicted so far (as OpenSTL's SimVP method rolls
a model out), so a horizon of ``3·T'`` is three chained forecasts.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..core.scaling import Scaling
from ..errors import UserValueError
from ..models.rollout import roll_out
from ..tasks import TaskSpec
from .model_card import ModelCard
from .model_files import ModelFile

PathLike = Union[str, Path]
ArrayLike = Union[np.ndarray, torch.Tensor]

PRECISIONS = {'32': (torch.float32, None), '32-true': (torch.float32, None), '64': (torch.float64, None),
              '64-true': (torch.float64, None), 'bf16-mixed': (torch.float32, torch.bfloat16),
              '16-mixed': (torch.float32, torch.float16)}
"""``--precision`` → (dtype of the weights and values, autocast dtype or ``None``)."""


def check_precision(precision: str) -> tuple[torch.dtype, Optional[torch.dtype]]:
    try:
        return PRECISIONS[str(precision)]
    except KeyError:
        raise UserValueError(f'precision {precision!r} is not supported; use one of {sorted(PRECISIONS)}') from None


def check_input_shape(shape: tuple, spec: TaskSpec, source: str = 'input') -> None:
    """Raise unless ``shape`` is ``(N, T_given ≥ T, C, H, W)`` of ``spec``, naming the source, task and shapes."""
    t, c, h, w = spec.input_shape
    shape = tuple(shape)
    if len(shape) != 5:
        raise UserValueError(f"{source}: task '{spec.name}' takes (N, T, C, H, W) = (N, ≥{t}, {c}, {h}, {w}), "
                             f'got {len(shape)} dimensions {shape}')
    wrong = [f'{label} is {got}, expected {want}' for label, got, want in zip('CHW', shape[2:], (c, h, w))
             if got != want]
    if shape[1] < t:
        wrong.insert(0, f'T is {shape[1]}, expected at least {t}')
    if wrong:
        raise UserValueError(f"{source}: task '{spec.name}' takes (N, T, C, H, W) = (N, ≥{t}, {c}, {h}, {w}), "
                             f'got {shape}: ' + '; '.join(wrong))


def select_input(x: ArrayLike, spec: TaskSpec, source: str = 'input') -> ArrayLike:
    """``(N, T_given, C, H, W)`` → its last ``T`` frames (after :func:`check_input_shape`)."""
    check_input_shape(x.shape, spec, source)
    return x[:, -spec.input_frames:]


def available_devices() -> list[str]:
    """The devices torch can run on here: ``'cpu'``, then the accelerator's type and each of its devices."""
    names = ['cpu']
    if torch.accelerator.is_available():
        kind = torch.accelerator.current_accelerator().type
        names += [kind] + [f'{kind}:{index}' for index in range(torch.accelerator.device_count())]
    return names


def check_device(device: Union[str, torch.device], option: str = 'device') -> torch.device:
    """``device`` as a ``torch.device`` if torch has it on this machine (``'auto'``: the accelerator if there is
    one, else the CPU); a ``ValueError`` naming ``option``, the devices there are and ``device`` otherwise."""
    available = available_devices()
    if str(device) == 'auto':
        return torch.device(available[1] if len(available) > 1 else 'cpu')
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    if parsed is not None and (parsed.type == 'cpu' or str(parsed) in available):
        return parsed
    others = ', '.join(repr(name) for name in available[1:]) or 'none besides the CPU'
    raise UserValueError(f"{option}: expected 'cpu', 'auto' or one of torch's devices on this machine ({others}), "
                         f'got {str(device)!r}')


def check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise UserValueError(f'horizon must be a positive integer, got {horizon!r}')
    return int(horizon)


class Predictor:
    """A trained model with what it needs to forecast in physical units: tasks, scalings, options.

    Args:
        model: ``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)`` in the model range.
        card: its :class:`~.model_card.ModelCard` (task specs, scalings, model/method options).
        device: where the model runs (``'cpu'``, ``'cuda'``, ``'cuda:1'``…).
    """

    def __init__(self, model: nn.Module, card: ModelCard, device: Union[str, torch.device] = 'cpu') -> None:
        self.model = model.eval()
        self.card = card
        self.device = check_device(device)
        self.model.to(self.device)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return {t.name: t for t in self.card.tasks}

    @property
    def scalings(self) -> dict[str, Scaling]:
        return dict(self.card.scalings)

    @property
    def options(self) -> dict:
        """The model's and the training method's options."""
        return {'model': dict(self.card.model), 'method': dict(self.card.method)}

    def task(self, name: str) -> TaskSpec:
        return self.card.task(name)

    def to(self, device: Union[str, torch.device]) -> 'Predictor':
        self.device = check_device(device)
        self.model.to(self.device)
        return self

    def forecast(self, x: torch.Tensor, task: str, horizon: Optional[int] = None) -> torch.Tensor:
        """Model range: ``(B, T, C, H, W)`` → ``(B, K, C, H, W)``, ``K = horizon`` (default ``T'``), rolling
        the model out (each call on the last ``T`` frames of inputs and predictions) beyond ``T'``."""
        spec = self.task(task)
        frames = spec.output_frames if horizon is None else check_horizon(horizon)
        return roll_out(lambda past: self.model(past, task), x, frames)

    @torch.no_grad()
    def predict(self, x: ArrayLike, task: str, horizon: Optional[int] = None, batch_size: int = 16,
                precision: str = '32', progress: bool = False, *, source: Optional[PathLike] = None,
                name: str = 'x') -> ArrayLike:
        """Physical units in and out: ``x (N, T_given, C, H, W)`` (or one sample ``(T_given, C, H, W)``)
        → ``(N, K, C, H, W)``; the last ``T`` given frames are used.

        ``x`` is checked as the data loaders check what they read (``datasets/checks.py``): integers or
        floats, not empty, the task's shape, and no NaN or ±Inf in the frames used; errors name it
        (``name``, and the file ``source`` it was read from). A forecast with NaN or ±Inf is a
        ``FloatingPointError``, never a result. Returns a NumPy array for NumPy input, else a tensor on
        ``x``'s device; float32, or float64 with ``precision='64'``. ``batch_size`` samples run at a time;
        ``progress`` prints a line to stderr.
        """
        from ..datasets.checks import check_array, check_rows_finite, name_range, non_finite_rows

        spec = self.task(task)
        horizon = spec.output_frames if horizon is None else check_horizon(horizon)
        dtype, autocast = check_precision(precision)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        as_numpy = not isinstance(x, torch.Tensor)
        if as_numpy:
            x = np.asarray(x)
        check_array(source, name, x)
        single = x.ndim == 4
        given = x[None] if single else x
        label = str(source) if source is not None else repr(name)
        window = select_input(given, spec, label)
        frames = given.shape[1]
        part = '' if frames == spec.input_frames else \
            f' frames {name_range(frames - spec.input_frames, spec.input_frames)} (the last {spec.input_frames}, which ' \
            'the model reads)'
        values = torch.as_tensor(np.require(window, requirements='W')) if as_numpy else window   # copies the window
        check_rows_finite(values, source, name, part=part, why='the forecast would be NaN')
        out_device = values.device
        scaling = self.card.scalings[task]
        self.model.to(device=self.device, dtype=dtype)
        outputs = []
        total = len(values)
        for start in range(0, total, batch_size):
            batch = scaling.to_model(values[start:start + batch_size].to(device=self.device, dtype=dtype))
            with self._autocast(autocast):
                pred = self.forecast(batch, task, horizon)
            outputs.append(scaling.to_physical(pred.to(dtype)).to(out_device))
            if progress:
                done = min(start + batch_size, total)
                print(f'\rpredict {task}: {done}/{total} samples, {horizon} frames', end='' if done < total else '\n',
                      file=sys.stderr, flush=True)
        result = torch.cat(outputs)
        bad = non_finite_rows(result)
        if len(bad):
            listed = ', '.join(str(int(i)) for i in bad[:10]) + (', …' if len(bad) > 10 else '')
            raise FloatingPointError(
                f"{label}: the forecast of task '{task}' holds NaN or ±Inf in {len(bad)} of {total} samples ({listed}) "
                f'though the inputs are finite (precision {precision!r}): the model overflowed or its weights are not '
                'finite; try precision 32, check that the inputs are in physical units, or use another checkpoint')
        if single:
            result = result[0]
        return result.numpy() if as_numpy else result

    def _autocast(self, dtype: Optional[torch.dtype]):
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def predictor_of(model_file: ModelFile, backbone_file: Optional[PathLike] = None,
                 device: Union[str, torch.device] = 'cpu') -> Predictor:
    """The :class:`Predictor` of a checkpoint or export that carries its model card (everything it needs).
    ``backbone_file``: an export's pretrained weights file (default: the path recorded at training),
    checked by its SHA-256."""
    from .export import model_from_export
    from .model_files import load_state_strictly

    card = model_file.require_card()
    if model_file.kind == 'export':
        return Predictor(model_from_export(model_file, backbone_file), card, device)
    model = card.build_model()
    load_state_strictly(model, model_file.state, model_file.path, f'the model of its card ({card.model.get("type")})')
    return Predictor(model, card, device)
