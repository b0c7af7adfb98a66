"""Reading the files a trained model lives in: Lightning checkpoints and ``.safetensors`` exports.

Both give the model's tensors under the model's own parameter names (those of files saved before the ViT
blocks' parts were adopted, ``backbone.blocks.N.block.…``, renamed: ``modules/spatiotemporal_block.py``)
and, when present, its
:class:`~.model_card.ModelCard`. An export is refused unless its tensors and card have the SHA-256
hashes it records (``integrity.py``). Checkpoints are read with ``torch.load(weights_only=True)``: ours
hold only tensors, dicts and primitives, so nothing in them is executed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union

import torch

from ..core.state_diff import StateDiff
from ..errors import UserValueError
from ..modules.spatiotemporal_block import renamed_legacy_keys
from .checkpoint_io import load_checkpoint
from .integrity import check_export_hashes
from .model_card import CARD_KEY, ModelCard

EXPORT_FORMAT = 'openstl_unistd.export/2'
"""Value of the ``format`` metadata key of our ``.safetensors`` exports (2: with the hashes of ``integrity.py``)."""

UNHASHED_FORMATS = ('openstl_unistd.export/1',)
"""Earlier export formats: without hashes, so refused by the hash check with a message saying so."""

LIGHTNING_PREFIX = 'model.'
"""Our LightningModules hold the model as ``self.model``: its keys in a checkpoint start with this."""


@dataclass
class ModelFile:
    """The contents of a checkpoint or export.

    Attributes:
        path: the file.
        kind: ``'checkpoint'`` (every tensor of the model) or ``'export'`` (the trained tensors, and the
            backbone only when it was randomly initialized).
        state: the model's tensors by parameter name (no ``model.`` prefix).
        card: the model card, ``None`` for checkpoints written before cards existed.
    """

    path: Path
    kind: Literal['checkpoint', 'export']
    state: dict[str, torch.Tensor]
    card: Optional[ModelCard]

    def require_card(self) -> ModelCard:
        if self.card is None:
            raise UserValueError(f'{self.path}: the checkpoint holds no model card (it predates them or was written '
                                 'by another tool); give the config it was trained with (-c CONFIG / config=...)')
        return self.card


def read_model_file(path: Union[str, Path]) -> ModelFile:
    """A ``.safetensors`` export or a Lightning checkpoint (any other suffix); clear errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'model file {str(path)!r} not found')
    if path.suffix == '.safetensors':
        return _read_export(path)
    return _read_checkpoint(path)


def _read_export(path: Path) -> ModelFile:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework='pt') as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path), device='cpu')
    except Exception as error:  # a corrupt or foreign file: say which one
        raise UserValueError(f'{path}: cannot read the .safetensors file ({type(error).__name__}: {error})') from error
    if metadata.get('format') not in (EXPORT_FORMAT, *UNHASHED_FORMATS) or CARD_KEY not in metadata:
        raise UserValueError(f'{path}: not an openstl-unistd export (metadata format {metadata.get("format")!r}, '
                             f'expected {EXPORT_FORMAT!r}); write one with tools/export.py')
    check_export_hashes(path, state, metadata, metadata[CARD_KEY])
    return ModelFile(path, 'export', renamed_legacy_keys(state), ModelCard.from_json(metadata[CARD_KEY], str(path)))


def _read_checkpoint(path: Path) -> ModelFile:
    checkpoint = load_checkpoint(path)
    if 'state_dict' in checkpoint:
        state = {k[len(LIGHTNING_PREFIX):]: v for k, v in checkpoint['state_dict'].items()
                 if k.startswith(LIGHTNING_PREFIX)}
        if not state:
            raise UserValueError(f'{path}: its state_dict has no {LIGHTNING_PREFIX!r} keys; not a checkpoint of our methods')
    elif checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state = dict(checkpoint)  # a plain model.state_dict()
    else:
        raise UserValueError(f'{path}: neither a Lightning checkpoint (no "state_dict") nor a model state dict')
    card = checkpoint.get(CARD_KEY) if 'state_dict' in checkpoint else None
    return ModelFile(path, 'checkpoint', renamed_legacy_keys(state),
                     ModelCard.from_dict(card, str(path)) if card is not None else None)


def load_state_strictly(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Union[str, Path],
                        what: str = 'the model') -> None:
    """``model.load_state_dict(state)`` with an error naming the file and the first differing keys/shapes."""
    StateDiff.of(model.state_dict(), state).check(source, what)
    model.load_state_dict(state)
