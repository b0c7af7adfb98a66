"""Whole models: UniSTD and the multi-task baselines (SimVP v1/v2, TAU, Earthformer)."""
from .multitask_earthformer import MultiTaskEarthformer
from .multitask_simvp import MultiTaskSimVP
from .unistd import PAPER_LORA, PAPER_TEMPORAL, UniSTD

__all__ = ['UniSTD', 'PAPER_LORA', 'PAPER_TEMPORAL', 'MultiTaskSimVP', 'MultiTaskEarthformer']
