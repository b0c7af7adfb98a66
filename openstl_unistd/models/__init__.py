"""Whole models: UniSTD (and, later, multi-task baselines)."""
from .unistd import PAPER_LORA, PAPER_TEMPORAL, UniSTD

__all__ = ['UniSTD', 'PAPER_LORA', 'PAPER_TEMPORAL']
