"""Adapter files: a trained model without its frozen pretrained backbone, as ``.safetensors``.

An export holds every tensor that training changed — task encoders and decoders, LoRA experts,
routers, ranks (and their frozen flags), temporal modules — and, in its metadata, the model card
(task specs, scalings, model and method options, the backbone's scheme, timm name and the SHA-256
of its pretrained file). The frozen backbone is restored from that file, checked by its hash; a
backbone that was randomly initialized is stored in the export (no file could restore it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from ..core.state_diff import StateDiff
from ..modules.adapter import backbone_keys
from .model_card import CARD_KEY, ModelCard
from .model_files import EXPORT_FORMAT, ModelFile, load_state_strictly, read_model_file

PathLike = Union[str, Path]


def _describe(backbone: dict) -> str:
    return f"backbone '{backbone.get('scheme')}' ({backbone.get('timm_name')})"


def check_backbone_file(backbone: dict, path: PathLike, source: PathLike) -> Path:
    """``path`` if its SHA-256 is the one ``backbone`` records; a ``ValueError`` naming both files otherwise."""
    from ..modules.pretrained import file_sha256

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: {_describe(backbone)} weights file {str(path)!r} not found; give the "
                                f"file it was trained with (sha256 {backbone['sha256']}, recorded as "
                                f"{backbone.get('file')!r}) with --backbone-file / backbone_file=")
    digest = file_sha256(path)
    if digest != backbone['sha256']:
        raise ValueError(f"{source}: backbone file {str(path)!r} has sha256 {digest}, but the model was trained with "
                         f"{backbone.get('file')!r} (sha256 {backbone['sha256']}), {_describe(backbone)}; "
                         'refusing a different backbone')
    return path


def backbone_file_for(card: ModelCard, source: PathLike, backbone_file: Optional[PathLike] = None) -> Optional[Path]:
    """The checked weights file of ``card``'s pretrained backbone (``None`` if it has none to load)."""
    backbone = card.backbone
    if backbone is None or card.backbone_stored:
        return None
    candidate = backbone_file or backbone.get('file')
    if not candidate:
        raise FileNotFoundError(f'{source}: {_describe(backbone)} needs its pretrained weights file '
                                f"(sha256 {backbone['sha256']}); give it with --backbone-file / backbone_file=")
    return check_backbone_file(backbone, candidate, source)


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_model` wrote."""

    path: Path
    tensors: int
    elements: int
    bytes: int
    backbone_stored: bool


def export_model(source: Union[PathLike, ModelFile], out: PathLike, backbone_file: Optional[PathLike] = None,
                 card: Optional[ModelCard] = None) -> ExportSummary:
    """Write the trained tensors of checkpoint ``source`` and its card to ``out`` (``.safetensors``).

    When the backbone's weights file is at hand (``backbone_file`` or the path the card records), the
    checkpoint's backbone must equal it exactly, so that the export and that file give the checkpoint's
    outputs; a checkpoint whose backbone was changed by training is refused.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if out.suffix != '.safetensors':
        raise ValueError(f'--out {str(out)!r}: an export is a .safetensors file')
    model_file = source if isinstance(source, ModelFile) else read_model_file(source)
    if model_file.kind != 'checkpoint':
        raise ValueError(f'{model_file.path}: already an export')
    card = card or model_file.require_card()
    model = card.build_model()
    load_state_strictly(model, model_file.state, model_file.path, f'the model of its card ({card.model.get("type")})')
    frozen = set() if card.backbone_stored else backbone_keys(model)
    if frozen and card.backbone is None:
        raise ValueError(f'{model_file.path}: its model card does not identify the backbone; an export could not '
                         'restore it')
    weights = None
    if frozen and (backbone_file or Path(str(card.backbone.get('file'))).is_file()):
        weights = backbone_file_for(card, model_file.path, backbone_file)
    if weights is not None:
        reference = card.build_model(pretrained=weights).state_dict()
        changed = [k for k in sorted(frozen) if not torch.equal(reference[k], model_file.state[k])]
        if changed:
            raise ValueError(f'{model_file.path}: {len(changed)} backbone weights differ from {str(weights)!r} '
                             f'(e.g. {changed[:3]}); an export restores the backbone from that file, so it would '
                             'not reproduce this checkpoint')
    state = model.state_dict()
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items() if k not in frozen}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={'format': EXPORT_FORMAT, CARD_KEY: card.to_json()})
    return ExportSummary(out, len(tensors), sum(t.numel() for t in tensors.values()),
                         sum(t.numel() * t.element_size() for t in tensors.values()), card.backbone_stored)


def model_from_export(model_file: ModelFile, backbone_file: Optional[PathLike] = None) -> nn.Module:
    """The model of an export, its backbone from the hash-checked weights file (or from the export)."""
    card = model_file.require_card()
    weights = backbone_file_for(card, model_file.path, backbone_file)
    model = card.build_model(pretrained=weights if weights is not None else False)
    frozen = backbone_keys(model) if weights is not None else set()
    expected = {k: v for k, v in model.state_dict().items() if k not in frozen}
    StateDiff.of(expected, model_file.state).check(model_file.path, f'the model of its card ({card.model.get("type")})',
                                                   file='the export')
    model.load_state_dict(model_file.state, strict=False)
    return model
