"""Adapter files: a trained model without its frozen backbone, as ``.safetensors``.

An export holds every tensor that training changed — task encoders and decoders, LoRA experts,
routers, ranks (and their frozen flags), temporal modules — and, in its metadata, the model card
(task specs, scalings, model and method options, the backbone's identity) and the SHA-256 of its
tensors and of its card (``integrity.py``), checked whenever it is read. The frozen backbone is not
stored: a pretrained one is restored from its weights file, checked by that file's SHA-256; a random
one is derived again from its recorded architecture and seed (``backbone_seed``), checked by the
SHA-256 of the derived weights (``weights_sha256``). A backbone that neither can restore (trained, or
random but not from its seed, as drawn before seeds were recorded) is stored and hashed with the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from ..core.state_diff import StateDiff
from ..errors import UserValueError
from ..modules.adapter import backbone_keys
from .integrity import IntegrityError, export_hashes, tensors_sha256
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
        raise UserValueError(f"{source}: backbone file {str(path)!r} has sha256 {digest}, but the model was trained with "
                             f"{backbone.get('file')!r} (sha256 {backbone['sha256']}), {_describe(backbone)}; "
                             'refusing a different backbone')
    return path


def backbone_file_for(card: ModelCard, source: PathLike, backbone_file: Optional[PathLike] = None) -> Optional[Path]:
    """The checked weights file of ``card``'s pretrained backbone (``None`` if it has none to load)."""
    backbone = card.backbone
    if backbone is None or card.backbone_stored or card.random_backbone:
        return None
    candidate = backbone_file or backbone.get('file')
    if not candidate:
        raise FileNotFoundError(f'{source}: {_describe(backbone)} needs its pretrained weights file '
                                f"(sha256 {backbone['sha256']}); give it with --backbone-file / backbone_file=")
    return check_backbone_file(backbone, candidate, source)


def _versions() -> dict:
    import timm

    return {'torch': torch.__version__.split('+')[0], 'timm': timm.__version__}


def _derived_backbone(model: nn.Module, frozen: set) -> dict[str, torch.Tensor]:
    """The backbone tensors of a model just built from its card: for a random backbone, those its seed derives."""
    state = model.state_dict()
    return {k: state[k].detach().clone() for k in frozen}


def check_random_backbone(card: ModelCard, model: nn.Module, source: PathLike) -> None:
    """Raise unless the backbone of ``model`` (built from ``card``'s record, or from a config that says it is
    the same) has the ``weights_sha256`` that ``card`` records (an export written before the ViT blocks' parts
    were adopted hashed them under their old names, ``legacy_key``)."""
    from ..modules.spatiotemporal_block import legacy_key

    backbone = card.backbone
    derived = {k: v for k, v in model.state_dict().items() if k in backbone_keys(model)}
    actual = tensors_sha256(derived)
    if backbone['weights_sha256'] in (actual, tensors_sha256({legacy_key(k): v for k, v in derived.items()})):
        return
    versions = _versions()
    recorded = backbone.get('derived_with') or {}
    hint = (f"; it was derived with torch {recorded.get('torch')} and timm {recorded.get('timm')}, this is torch "
            f"{versions['torch']} and timm {versions['timm']}, whose random initialization may differ: load the "
            'checkpoint instead') if recorded and recorded != versions else ''
    architecture = {'backbone': card.model.get('backbone'), 'backbone_kwargs': card.model.get('backbone_kwargs')}
    raise IntegrityError(f"{source}: the random backbone that its record derives ({architecture}, seed "
                         f"{backbone.get('seed')}) has sha256 {actual}, the export records {backbone['weights_sha256']}; "
                         f'refusing a backbone other than the one it was trained with{hint}')


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_model` wrote."""

    path: Path
    tensors: int
    elements: int
    bytes: int
    backbone: str
    """Where loading it gets the backbone: ``'stored'`` (the export), ``'file'`` (its pretrained weights file),
    ``'seed'`` (derived again from its seed) or ``'none'`` (a model without one)."""

    @property
    def backbone_stored(self) -> bool:
        return self.backbone == 'stored'


def _with_derivation(card: ModelCard, derived: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> ModelCard:
    """``card`` whose random backbone records the hash of its derivation when ``state`` holds exactly the
    ``derived`` weights (else without one: the export stores the backbone)."""
    backbone = {k: v for k, v in card.backbone.items() if k not in ('weights_sha256', 'derived_with')}
    if derived and all(torch.equal(derived[k], state[k]) for k in derived):
        from ..modules.backbone import RANDOM_BACKBONE_SEED

        backbone.setdefault('seed', card.model.get('backbone_seed', RANDOM_BACKBONE_SEED))
        backbone.update(weights_sha256=tensors_sha256(derived), derived_with=_versions())
    return card.replace(backbone=backbone)


def export_model(source: Union[PathLike, ModelFile], out: PathLike, backbone_file: Optional[PathLike] = None,
                 card: Optional[ModelCard] = None) -> ExportSummary:
    """Write the trained tensors of checkpoint ``source``, its card and their hashes to ``out`` (``.safetensors``).

    When the backbone's weights file is at hand (``backbone_file`` or the path the card records), the
    checkpoint's backbone must equal it exactly, so that the export and that file give the checkpoint's
    outputs; a checkpoint whose backbone was changed by training is refused. A random backbone that its
    seed derives again is left out (its hash recorded), any other random one is stored.
    """
    from safetensors.torch import save_file

    out = Path(out)
    if out.suffix != '.safetensors':
        raise UserValueError(f'--out {str(out)!r}: an export is a .safetensors file')
    model_file = source if isinstance(source, ModelFile) else read_model_file(source)
    if model_file.kind != 'checkpoint':
        raise UserValueError(f'{model_file.path}: already an export')
    card = card or model_file.require_card()
    model = card.build_model()
    frozen = backbone_keys(model)
    if frozen and card.backbone is None:
        raise UserValueError(f'{model_file.path}: its model card does not identify the backbone; an export could not '
                             'restore it')
    if card.random_backbone and not card.model.get('train_backbone', False):
        card = _with_derivation(card, _derived_backbone(model, frozen), model_file.state)
    load_state_strictly(model, model_file.state, model_file.path, f'the model of its card ({card.model.get("type")})')
    if card.backbone_stored:
        frozen = set()
    weights = None
    if frozen and not card.random_backbone and (backbone_file or Path(str(card.backbone.get('file'))).is_file()):
        weights = backbone_file_for(card, model_file.path, backbone_file)
    if weights is not None:
        reference = card.build_model(pretrained=weights).state_dict()
        changed = [k for k in sorted(frozen) if not torch.equal(reference[k], model_file.state[k])]
        if changed:
            raise UserValueError(f'{model_file.path}: {len(changed)} backbone weights differ from {str(weights)!r} '
                                 f'(e.g. {changed[:3]}); an export restores the backbone from that file, so it would '
                                 'not reproduce this checkpoint')
    state = model.state_dict()
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items() if k not in frozen}
    card_json = card.to_json()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={'format': EXPORT_FORMAT, CARD_KEY: card_json,
                                           **export_hashes(tensors, card_json)})
    backbone = ('none' if card.backbone is None else 'stored' if card.backbone_stored else
                'seed' if card.random_backbone else 'file')
    return ExportSummary(out, len(tensors), sum(t.numel() for t in tensors.values()),
                         sum(t.numel() * t.element_size() for t in tensors.values()), backbone)


def model_from_export(model_file: ModelFile, backbone_file: Optional[PathLike] = None) -> nn.Module:
    """The model of an export (whose hashes :func:`~.model_files.read_model_file` checked), its backbone from
    the hash-checked weights file, derived again from its seed and checked, or from the export."""
    card = model_file.require_card()
    weights = backbone_file_for(card, model_file.path, backbone_file)
    model = card.build_model(pretrained=weights if weights is not None else False)
    frozen = set() if card.backbone is None or card.backbone_stored else backbone_keys(model)
    if frozen and card.random_backbone:
        check_random_backbone(card, model, model_file.path)
    expected = {k: v for k, v in model.state_dict().items() if k not in frozen}
    StateDiff.of(expected, model_file.state).check(model_file.path, f'the model of its card ({card.model.get("type")})',
                                                   file='the export')
    model.load_state_dict(model_file.state, strict=False)
    return model
