"""Counting trainable and frozen parameters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from torch import nn


@dataclass
class ParameterCount:
    """Numbers of trainable and frozen parameter elements."""

    trainable: int = 0
    frozen: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    def add(self, parameter: nn.Parameter) -> None:
        if parameter.requires_grad:
            self.trainable += parameter.numel()
        else:
            self.frozen += parameter.numel()


def count_parameters(parameters: Iterable[nn.Parameter] | nn.Module) -> ParameterCount:
    """Trainable and frozen element counts of a module or of an iterable of parameters."""
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    count = ParameterCount()
    for parameter in parameters:
        count.add(parameter)
    return count
