"""The training methods' options, each declared once: its name, default, rule, description and config section.

The config rules (``engine/config.py``: which keys a section accepts, which values), docs/training.md's key
table (checked by tests/test_docs.py), the methods (``UniSTDMethod``, ``TAUMethod``, ``MultiTaskMethod``, and through their registration :mod:`.registry`) and
the OpenSTL plugin all read these dataclasses (:func:`~openstl_unistd.core.options.option` fields), so a key
has one spelling, one default and one rule everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Mapping, Optional

from ..core.options import FLAG, check_values, number, one_of, option, section_keys
from ..errors import check_known_keys

__all__ = ['TrainingOptions', 'RankSearchOptions', 'DivergenceOptions', 'options_of',
           'section_keys']


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

    lr: float = option(7e-4, 'AdamW learning rate', number(0, strict=True), section='optim')
    weight_decay: float = option(1e-5, 'AdamW weight decay', number(0), section='optim')
    warmup_epochs: float = option(5, 'linear warm-up epochs, then cosine decay', number(0), section='optim')
    warmup_lr: float = option(1e-8, 'learning rate the warm-up starts from', number(0), section='optim')
    min_lr: float = option(1e-6, 'learning rate the cosine decay ends at', number(0), section='optim')
    grad_clip: Optional[float] = option(None, 'max gradient norm (`None`: no clipping)',
                                        number(0, strict=True, optional=True), section='optim')
    ssim_data_range: float = option(1.0, "SSIM's `data_range` on [0, 1] frames (docs/metrics.md)",
                                    number(0, strict=True), section='evaluation')
    save_preds: int = option(0, 'test samples per task whose inputs, targets and predictions are saved '
                                '(`--save-preds`)', number(0, integer=True), section='evaluation')
    figures: bool = option(True, '`figures/<task>.png`, a frame grid per task, after testing', FLAG,
                           section='evaluation')
    copy_last: bool = option(False, 'also score "repeat the last input frame" on the test sets', FLAG,
                             section='evaluation')
    train_mean: bool = option(False, 'also score "predict the per-pixel training mean" on the test sets: a model '
                                     'that learns a flat field loses to it', FLAG, section='evaluation')
    train_mean_samples: int = option(512, 'training samples (at most) that mean is taken over',
                                     number(1, integer=True), section='evaluation')
    save_dir: Optional[str] = option(None, section=None)


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

    epochs: int = option(10, '`unistd` only: epochs of the rank search (docs/method.md)', number(0, integer=True))
    lr: Optional[float] = option(None, "its learning rate (`None`: 0.01 for `marginal_gain`, the paper's 0.05 for "
                                       "`paper`)", number(0, strict=True, optional=True))
    momentum: float = option(0.9, 'its momentum', number(0))
    budget: Optional[float] = option(None, 'C, the total rank budget (`None`: the initial total)',
                                     number(0, strict=True, optional=True))
    beta: float = option(1.0, "the budget term's weight (`paper` only)", number(0))
    formulation: str = option('marginal_gain', "`'marginal_gain'` or `'paper'`", one_of(*FORMULATIONS))

    def __post_init__(self) -> None:
        check_values(RankSearchOptions, vars(self), 'rank_search')

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

    alpha: float = option(0.1, "`tau` only: weight of TAU's differential divergence", number(0))
    tau: float = option(0.1, '`tau` only: its softmax temperature', number(0, strict=True))


def options_of(options: type, values: Optional[Mapping], where: str):
    """``options(**values)`` with unknown keys named (``where``: the config section) instead of a ``TypeError``."""
    values = dict(values or {})
    check_known_keys(values, [f.name for f in fields(options)], where)
    return options(**values)
