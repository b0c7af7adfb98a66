"""The training methods' options, each declared once: its name, default and config section.

The config rules (``engine/config.py``: which keys a section accepts), the methods (``UniSTDMethod``,
``TAUMethod``, ``MultiTaskMethod``, and through their registration :mod:`.registry`) and the OpenSTL
plugin all read these dataclasses, so a key has one spelling and one default everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar, Mapping, Optional

from ..errors import check_known_keys


def _in(section: Optional[str], default):
    """A field whose config key lives in ``section`` (``None``: set by the run, not by a config)."""
    return field(default=default, metadata={'section': section})


def section_keys(options: type, section: str) -> tuple[str, ...]:
    """The fields of dataclass ``options`` that config section ``section`` sets."""
    return tuple(f.name for f in fields(options) if f.metadata.get('section', section) == section)


@dataclass(frozen=True)
class TrainingOptions:
    """Optimization (config section ``optim``) and evaluation (``evaluation``) settings of every method.

    Attributes:
        lr, weight_decay: AdamW on every trainable weight.
        warmup_epochs, warmup_lr, min_lr: linear warm-up from ``warmup_lr``, then cosine to ``min_lr``.
        grad_clip: max gradient norm (``None``: no clipping).
        ssim_data_range: see :class:`~openstl_unistd.core.metrics.ForecastMetrics`.
        save_preds: number of test samples per task whose inputs/targets/predictions are saved.
        figures: save a frame grid per task after testing.
        copy_last: also score the reference predictor "repeat the last input frame" on the test sets.
        train_mean: also score the reference predictor "the per-pixel training mean" (over at most
            ``train_mean_samples`` training samples): a model that learns a flat field loses to it.
        save_dir: where test predictions and figures go (``None``: nowhere; set by the run).
    """

    lr: float = _in('optim', 7e-4)
    weight_decay: float = _in('optim', 1e-5)
    warmup_epochs: float = _in('optim', 5)
    warmup_lr: float = _in('optim', 1e-8)
    min_lr: float = _in('optim', 1e-6)
    grad_clip: Optional[float] = _in('optim', None)
    ssim_data_range: float = _in('evaluation', 1.0)
    save_preds: int = _in('evaluation', 0)
    figures: bool = _in('evaluation', True)
    copy_last: bool = _in('evaluation', False)
    train_mean: bool = _in('evaluation', False)
    train_mean_samples: int = _in('evaluation', 512)
    save_dir: Optional[str] = _in(None, None)


@dataclass(frozen=True)
class RankSearchOptions:
    """The rank search of RA-MoE (config section ``rank_search``; docs/method.md "Rank search").

    Attributes:
        epochs: epochs of search before the ranks are rounded (total ≤ C) and frozen (paper: 10 of 90).
        lr, momentum: SGD with Nesterov momentum on the ranks; ``lr=None``: :attr:`DEFAULT_LR` of the
            formulation. With ``'marginal_gain'`` the gradients are divided by their mean magnitude
            first, so ``lr`` is in rank units per step.
        budget: C, the total rank; ``None`` for the initial total rank.
        beta: β of the ``'paper'`` formulation's budget term ``β · |C − Σr|`` (unused by ``'marginal_gain'``).
        formulation: ``'marginal_gain'`` (ranks follow the marginal gain of one more component,
            projected onto Σr = C) or ``'paper'`` (Eq. 9-10 literally).
    """

    FORMULATIONS: ClassVar[tuple[str, ...]] = ('marginal_gain', 'paper')
    DEFAULT_LR: ClassVar[Mapping[str, float]] = {'marginal_gain': 0.01, 'paper': 0.05}
    """The paper's 0.05 for its SGD on raw gradients; 0.01 rank units per step for the normalized
    marginal-gain steps."""

    epochs: int = 10
    lr: Optional[float] = None
    momentum: float = 0.9
    budget: Optional[float] = None
    beta: float = 1.0
    formulation: str = 'marginal_gain'

    def __post_init__(self) -> None:
        if self.formulation not in self.FORMULATIONS:
            raise ValueError(f'rank_search.formulation must be one of {self.FORMULATIONS}, got {self.formulation!r}')

    @property
    def step_size(self) -> float:
        """The rank learning rate: ``lr``, or the formulation's default."""
        return float(self.lr) if self.lr is not None else self.DEFAULT_LR[self.formulation]

    @property
    def rank_gradient(self) -> str:
        """What the adapters put in ``rank.grad`` (``RAMoELoRA.rank_gradient``) for this formulation."""
        return 'eq9' if self.formulation == 'paper' else 'marginal_gain'


@dataclass(frozen=True)
class DivergenceOptions:
    """TAU's differential divergence regularization (config ``method=dict(type='tau', alpha=..., tau=...)``):
    ``alpha`` its weight (OpenSTL's TAU: 0.1), ``tau`` its softmax temperature."""

    alpha: float = 0.1
    tau: float = 0.1


def options_of(options: type, values: Optional[Mapping], where: str):
    """``options(**values)`` with unknown keys named (``where``: the config section) instead of a ``TypeError``."""
    values = dict(values or {})
    check_known_keys(values, [f.name for f in fields(options)], where)
    return options(**values)
