"""Whole models: UniSTD and the multi-task baselines (SimVP v1/v2, TAU, Earthformer).

Importing this package registers their model types (:mod:`.registry`).
"""
from .multitask_earthformer import MultiTaskEarthformer
from .multitask_simvp import MultiTaskSimVP
from .registry import MODEL_TYPES, create_model, register_model
from .unistd import PAPER_LORA, PAPER_TEMPORAL, UniSTD

__all__ = ['UniSTD', 'PAPER_LORA', 'PAPER_TEMPORAL', 'MultiTaskSimVP', 'MultiTaskEarthformer', 'MODEL_TYPES',
           'create_model', 'register_model']
