"""Finding and reading pretrained ViT weights: local files or the Hugging Face cache, never the network.

Conversion of open_clip/OpenAI layouts is timm's own ``checkpoint_filter_fn``; this module only
finds the file, reads it, and checks that it holds every weight the backbone uses.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from ..errors import UserValueError

WEIGHT_SUFFIXES = ('.pt', '.pth', '.bin', '.safetensors')
HF_CACHE_FILENAMES = (
    'model.safetensors', 'pytorch_model.bin', 'open_clip_model.safetensors', 'open_clip_pytorch_model.bin')

PathLike = Union[str, os.PathLike]


class PretrainedWeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were asked for but no file or cached copy exists.

    ``problem`` says what is missing and where to get it; ``setting``, where given, says how the caller
    sets the file (the tools' ``--cfg-options``; the OpenSTL plug-in names its own config key, see
    :meth:`set_with`).
    """

    def __init__(self, problem: str, setting: Optional[str] = None) -> None:
        super().__init__(problem, setting)
        self.problem, self.setting = problem, setting

    def __str__(self) -> str:
        return self.problem if self.setting is None else f'{self.problem} {self.setting}'

    def set_with(self, setting: str) -> 'PretrainedWeightsNotFoundError':
        """The same error, saying ``setting`` instead (when it says how to set the file at all)."""
        return self if self.setting is None else type(self)(self.problem, setting)


def find_cached_weights(hf_repo: str) -> Optional[Path]:
    """A weights file of ``hf_repo`` already in the local Hugging Face cache, or ``None``."""
    from huggingface_hub import try_to_load_from_cache

    for filename in HF_CACHE_FILENAMES:
        found = try_to_load_from_cache(hf_repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _is_torchscript_archive(path: Path) -> bool:
    """OpenAI's released CLIP ``.pt`` files are TorchScript archives, not pickled state dicts."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any('/code/' in name for name in archive.namelist())


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pt``/``.pth``/``.bin`` (torch or TorchScript) or ``.safetensors`` file."""
    path = Path(path)
    if path.suffix not in WEIGHT_SUFFIXES:
        raise UserValueError(f'{path}: unsupported weights file type {path.suffix!r}; expected one of {WEIGHT_SUFFIXES}')
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file

            return load_file(str(path), device='cpu')
        if _is_torchscript_archive(path):
            return torch.jit.load(str(path), map_location='cpu').state_dict()
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # a corrupt or foreign file: say which one
        raise UserValueError(f'{path}: cannot read weights ({type(error).__name__}: {error})') from error
    if not isinstance(state, dict):
        raise UserValueError(f'{path}: expected a state dict, found a {type(state).__name__}')
    return state


def load_backbone_weights(
    model: nn.Module, state: dict[str, torch.Tensor], path: PathLike, prefixes: tuple[str, ...],
) -> None:
    """Load the weights under ``prefixes`` of a timm ViT from a state dict in any timm-known layout.

    Raises ``ValueError`` naming the file and key when a weight is missing or has another shape.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn

    try:
        converted = checkpoint_filter_fn(state, model)
    except Exception as error:
        raise UserValueError(f'{path}: not a ViT checkpoint timm can convert ({type(error).__name__}: {error})') from error
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    missing = [k for k in expected if k not in converted]
    if missing:
        raise UserValueError(
            f'{path}: {len(missing)} of {len(expected)} backbone weights are missing, e.g. {missing[:3]} '
            f'(is it a checkpoint of this architecture?)')
    for key, tensor in expected.items():
        if converted[key].shape != tensor.shape:
            raise UserValueError(
                f'{path}: key {key!r} has shape {tuple(converted[key].shape)}, expected {tuple(tensor.shape)}')
    model.load_state_dict({k: converted[k] for k in expected}, strict=False)


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: the identity of a pretrained weights file."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
