"""The shared Transformer: a pretrained timm ViT's blocks, frozen (docs/method.md#backbone-and-pretrained-weights)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import torch
import torch.utils.checkpoint
from torch import nn

from ..errors import UserTypeError, UserValueError
from .pretrained import (
    PathLike, PretrainedWeightsNotFoundError, find_cached_weights, hf_cache_dir, load_backbone_weights,
    read_state_dict)

USED_PREFIXES = ('norm_pre.', 'blocks.', 'norm.')

RANDOM_BACKBONE_SEED = 0
"""Default seed of a randomly initialized backbone (``pretrained=False``): its weights are those of
``torch.manual_seed(seed); timm.create_model(architecture, num_classes=0, **timm_kwargs)``, whatever the
global random state, so that an export can re-derive them from the seed (``inference/export.py``)."""


@dataclass(frozen=True)
class BackboneScheme:
    """An initialization scheme of paper Table 5: a timm model (with weight tag) and where to get it."""

    model_name: str
    weights_source: str = ''


CLIP_URL = ('https://openaipublic.azureedge.net/clip/models/'
            '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt')

BACKBONE_SCHEMES: dict[str, BackboneScheme] = {
    'clip': BackboneScheme(
        'vit_base_patch16_clip_quickgelu_224.openai',
        '`huggingface-cli download timm/vit_base_patch16_clip_224.openai model.safetensors`, '
        f'or OpenAI CLIP ViT-B/16 (ViT-B-16.pt) from {CLIP_URL}'),
    'laion': BackboneScheme(
        'vit_base_patch16_clip_224.laion2b',
        '`huggingface-cli download timm/vit_base_patch16_clip_224.laion2b model.safetensors`, or open_clip '
        'ViT-B-16 laion2b_s34b_b88k: `huggingface-cli download laion/CLIP-ViT-B-16-laion2B-s34B-b88K '
        'open_clip_pytorch_model.bin`'),
    'imagenet': BackboneScheme(
        'vit_base_patch16_224.augreg_in21k',
        '`huggingface-cli download timm/vit_base_patch16_224.augreg_in21k model.safetensors`'),
    'random': BackboneScheme('vit_base_patch16_clip_quickgelu_224'),
}
"""``clip`` uses QuickGELU (OpenAI's activation); ``random`` is the CLIP architecture untrained."""


class ViTBackbone(nn.Module):
    """Pre-norm, blocks and final norm of a ViT, applied to tokens ``(B, N, L)``.

    Patch embedding, class token, learned position embedding and head are not part of it.
    ``checkpoint`` (a plain attribute, set by the model): recompute each block in backward instead of
    keeping its activations.
    """

    checkpoint: bool = False

    def __init__(self, norm_pre: nn.Module, blocks: Sequence[nn.Module], norm: nn.Module,
                 embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm_pre = norm_pre
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm
        self.embed_dim = embed_dim
        self.num_heads = num_heads

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm_pre(tokens)
        recompute = self.checkpoint and torch.is_grad_enabled()
        for block in self.blocks:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False) if recompute else block(x)
        return self.norm(x)


def _weights_file(label: str, model_name: str, scheme: BackboneScheme | None,
                  pretrained: Union[bool, PathLike]) -> Path:
    """The local file to load for ``pretrained`` (a path, or ``True`` for the Hugging Face cache)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    hf_repo = cfg.hf_hub_id if cfg is not None else None
    source = scheme.weights_source if scheme and scheme.weights_source else (
        f'`huggingface-cli download {hf_repo} model.safetensors`' if hf_repo else 'the model authors')
    if pretrained is True:
        if hf_repo is None:
            raise UserValueError(f"backbone '{label}': timm knows no pretrained weights for {model_name}; "
                                 'give a weights file as pretrained=<path>')
        cached = find_cached_weights(hf_repo)
        if cached is None:
            raise PretrainedWeightsNotFoundError(
                f"backbone '{label}' ({model_name}): no weights file was given and {hf_repo} is not in the "
                f'Hugging Face cache ({hf_cache_dir()}); nothing is downloaded at run time. Get it with '
                f'{source}, then give its path or keep pretrained=True once it is in the cache:',
                "pretrained='<path to the file>' (e.g. --cfg-options model.pretrained=<path>).")
        return cached
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise PretrainedWeightsNotFoundError(
            f"backbone '{label}' ({model_name}): pretrained weights file {str(path)!r} not found. "
            f'Get it with {source} and put it at that path.')
    return path


def timm_model_name(name: str) -> str:
    """The timm model (with weight tag) of a scheme of paper Table 5, or ``name`` itself."""
    scheme = BACKBONE_SCHEMES.get(name)
    return scheme.model_name if scheme else name


def pretrained_weights_file(name: str, pretrained: Union[bool, PathLike]) -> Path | None:
    """The local file ``build_backbone(name, pretrained)`` reads (``None`` for random weights)."""
    if pretrained is False:
        return None
    return _weights_file(name, timm_model_name(name), BACKBONE_SCHEMES.get(name), pretrained)


def _random_timm_model(architecture: str, seed: int, timm_kwargs: dict) -> nn.Module:
    """``timm.create_model`` drawn from ``torch.manual_seed(seed)``; the global random state is left as it was."""
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(architecture, pretrained=False, num_classes=0, **timm_kwargs)


def build_backbone(name: str = 'clip', pretrained: Union[bool, PathLike] = False, seed: int = RANDOM_BACKBONE_SEED,
                   **timm_kwargs) -> ViTBackbone:
    """A frozen ViT backbone.

    Args:
        name: a scheme of paper Table 5 (``clip``, ``laion``, ``imagenet``, ``random``) or any timm
            ViT model name (e.g. ``vit_tiny_patch16_224`` with ``depth=2`` for tests).
        pretrained: ``False`` for random weights, ``True`` for the Hugging Face cache, or the path of
            a ``.pt``/``.pth``/``.bin``/``.safetensors`` file in timm, open_clip or OpenAI layout.
        seed: the random weights' seed (``pretrained=False`` only; see :data:`RANDOM_BACKBONE_SEED`). A
            pretrained backbone ignores it and is built exactly as before seeds existed.
        timm_kwargs: architecture overrides for ``timm.create_model`` (``depth``, ``embed_dim``, …).
    """
    import timm

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserTypeError(f'backbone {name!r}: seed must be an integer, got {seed!r}')

    scheme = BACKBONE_SCHEMES.get(name)
    model_name = scheme.model_name if scheme else name
    architecture = model_name.split('.')[0]
    if not timm.is_model(architecture):
        raise UserValueError(f'unknown backbone {name!r}: use one of {sorted(BACKBONE_SCHEMES)} or a timm ViT name')
    if name == 'random' and pretrained is not False:
        raise UserValueError("backbone 'random' is the untrained CLIP architecture; it takes pretrained=False")
    weights = _weights_file(name, model_name, scheme, pretrained) if pretrained is not False else None
    state = read_state_dict(weights) if weights is not None else None

    if weights is None:
        model = _random_timm_model(architecture, seed, timm_kwargs)
    else:
        model = timm.create_model(architecture, pretrained=False, num_classes=0, **timm_kwargs)
    if not all(hasattr(model, part) for part in ('norm_pre', 'blocks', 'norm')):
        raise UserTypeError(f'backbone {name!r} ({architecture}) is not a timm VisionTransformer')
    if state is not None:
        load_backbone_weights(model, state, weights, USED_PREFIXES)
    backbone = ViTBackbone(model.norm_pre, list(model.blocks), model.norm,
                           embed_dim=model.embed_dim, num_heads=model.blocks[0].attn.num_heads)
    backbone.requires_grad_(False)
    return backbone
