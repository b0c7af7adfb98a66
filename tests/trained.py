"""Helpers of the tests of trained-model files: tiny UniSTDs with non-trivial weights, cards, checkpoints."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from openstl_unistd.core.scaling import Scaling
from openstl_unistd.modules.ra_moe import round_and_freeze_ranks
from openstl_unistd.tasks import resolve_tasks
from openstl_unistd.inference.model_card import CARD_KEY, ModelCard, backbone_record

from .conftest import TINY_BACKBONE

TINY_OPTIONS = dict(type='UniSTD', pretrained=False, hidden_channels=8, **TINY_BACKBONE)
"""Model options of a card for the tiny backbone (random, so exports store it)."""


def tiny_vit_file(folder: Path, seed: int = 0, name: str = 'vit_tiny.safetensors') -> Path:
    """A randomly initialized timm ViT-Tiny of depth 2 saved as a pretrained weights file."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    vit = timm.create_model('vit_tiny_patch16_224', depth=2, num_classes=0)
    path = Path(folder) / name
    save_file(vit.state_dict(), str(path))
    return path


@torch.no_grad()
def make_trained(model: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
    """Give every trainable tensor (task ends, adapters, routers, temporal modules) random values, so that
    adapters and routers act as after training, and round and freeze the ranks."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and not name.endswith('.rank'):
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    for name, parameter in model.named_parameters():
        if name.endswith('.rank'):
            parameter.copy_(1 + 7 * torch.rand(parameter.shape, generator=generator))
    round_and_freeze_ranks(model)
    return model.eval()


def make_card(tasks: Sequence, scalings: Optional[Mapping[str, Scaling]] = None, **options) -> ModelCard:
    """The card of a tiny UniSTD over ``tasks`` (identity scalings unless given)."""
    specs = tuple(resolve_tasks(tasks))
    model = {**TINY_OPTIONS, **options}
    scalings = dict(scalings or {t.name: Scaling() for t in specs})
    return ModelCard(model, specs, scalings, {'type': 'unistd'}, backbone_record(model))


def build(card: ModelCard, seed: int = 0) -> torch.nn.Module:
    """The model of ``card`` with its pretrained file (if any) and trained-like weights."""
    pretrained = card.model.get('pretrained', False)
    torch.manual_seed(seed)
    return make_trained(card.build_model(pretrained=pretrained), seed)


def save_checkpoint(model: torch.nn.Module, card: Optional[ModelCard], path: Path) -> Path:
    """A checkpoint as our LightningModules write it: ``state_dict`` under ``model.``, the card beside it."""
    checkpoint = {'state_dict': {f'model.{k}': v for k, v in model.state_dict().items()}, 'epoch': 3}
    if card is not None:
        checkpoint[CARD_KEY] = card.to_dict()
    torch.save(checkpoint, path)
    return path
