"""The ViT blocks' parameter names are timm's (``backbone.blocks.0.attn.qkv…``, no ``block.block``), the maths
is the wrapped block's, and files saved with the old names (``backbone.blocks.0.block.…``) still load."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from openstl_unistd import load_predictor
from openstl_unistd.inference.export import export_model
from openstl_unistd.inference.integrity import export_hashes
from openstl_unistd.inference.model_card import CARD_KEY
from openstl_unistd.modules.adapter import backbone_keys
from openstl_unistd.modules.backbone import USED_PREFIXES
from openstl_unistd.modules.spatiotemporal_block import BLOCK_PARTS, SpatioTemporalBlock, legacy_key

from .trained import build, make_card, save_checkpoint

TASKS = ['demo_traffic']


class LegacyBlock(nn.Module):
    """The block as it was before its parts were adopted: the timm block wrapped as ``self.block``."""

    def __init__(self, block: nn.Module, temporal) -> None:
        super().__init__()
        self.block, self.temporal = block, temporal

    def forward(self, x):
        if self.temporal is None:
            return self.block(x)
        b = self.block
        x = x + b.drop_path1(b.ls1(b.attn(b.norm1(x))))
        x = self.temporal(x)
        return x + b.drop_path2(b.ls2(b.mlp(b.norm2(x))))


def _timm_block(block: SpatioTemporalBlock) -> nn.Module:
    """A timm ``Block`` holding ``block``'s parts (the same modules, so the same weights)."""
    from timm.models.vision_transformer import Block

    timm_block = Block.__new__(Block)
    nn.Module.__init__(timm_block)
    for name in BLOCK_PARTS:
        setattr(timm_block, name, getattr(block, name))
    return timm_block


@pytest.mark.parametrize('temporal', [True, False])
def test_names_read_as_timms_and_outputs_equal_the_wrapped_block(temporal):
    """Breaks if a block's parts move under another name (``block.``) or if its forward differs from the
    wrapped timm block's (with and without the temporal module)."""
    model = build(make_card(TASKS, temporal=temporal))
    names = [name for name, _ in model.named_parameters()]
    assert 'backbone.blocks.0.attn.qkv.adapter.lora_A' in names and not any('.block.' in n for n in names)
    assert any(n.startswith('backbone.blocks.1.temporal.') for n in names) == temporal
    import timm

    vit = timm.create_model('vit_tiny_patch16_224', depth=2, num_classes=0)
    timm_names = {f'backbone.{k}' for k in vit.state_dict() if k.startswith(USED_PREFIXES)}
    assert {k.replace('.base_layer.', '.') for k in backbone_keys(model)} == timm_names
    x = torch.randn(2, 7, model.embed_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for block in model.backbone.blocks:
            assert torch.equal(block(x), LegacyBlock(_timm_block(block), block.temporal)(x))


def test_a_block_other_than_timms_vit_block_is_refused():
    from timm.models.vision_transformer import ResPostBlock

    with pytest.raises(TypeError, match=r"ResPostBlock is not a timm ViT Block .*got children \['attn', 'norm1'"):
        SpatioTemporalBlock(ResPostBlock(16, 2))


def _legacy_names(state):
    return {legacy_key(k): v for k, v in state.items()}


def test_a_checkpoint_with_the_old_names_loads(tmp_path):
    """Breaks if loading stops mapping ``backbone.blocks.N.block.…`` to the new names."""
    card = make_card(TASKS)
    model = build(card)
    path = save_checkpoint(model, card, tmp_path / 'new.ckpt')
    checkpoint = torch.load(path, weights_only=True)
    checkpoint['state_dict'] = _legacy_names(checkpoint['state_dict'])
    assert any('.blocks.0.block.attn.' in k for k in checkpoint['state_dict'])
    torch.save(checkpoint, tmp_path / 'old.ckpt')
    x = np.random.default_rng(0).uniform(0, 1, (2, *card.tasks[0].input_shape)).astype(np.float32)
    assert np.array_equal(load_predictor(tmp_path / 'old.ckpt').predict(x, TASKS[0]),
                          load_predictor(path).predict(x, TASKS[0]))


def test_an_export_with_the_old_names_and_its_random_backbones_old_hash_loads(tmp_path):
    """An export written before the rename: tensors and the seed-derived backbone's ``weights_sha256`` under the
    old names. Breaks if reading stops mapping them or the backbone check stops accepting the old hash."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    card = make_card(TASKS)
    model = build(card)
    export = tmp_path / 'new.safetensors'
    assert export_model(save_checkpoint(model, card, tmp_path / 'm.ckpt'), export).backbone == 'seed'
    with safe_open(str(export), framework='pt') as handle:
        metadata = dict(handle.metadata())
    card_data = json.loads(metadata[CARD_KEY])
    derived = {k: v for k, v in model.state_dict().items() if k in backbone_keys(model)}
    from openstl_unistd.inference.integrity import tensors_sha256

    assert card_data['backbone']['weights_sha256'] == tensors_sha256(derived)
    card_data['backbone']['weights_sha256'] = tensors_sha256(_legacy_names(derived))
    tensors = _legacy_names(load_file(str(export)))
    card_json = json.dumps(card_data, sort_keys=True)
    old = tmp_path / 'old.safetensors'
    save_file(tensors, str(old), metadata={**metadata, CARD_KEY: card_json, **export_hashes(tensors, card_json)})
    x = np.random.default_rng(1).uniform(0, 1, (2, *card.tasks[0].input_shape)).astype(np.float32)
    assert np.array_equal(load_predictor(old).predict(x, TASKS[0]), load_predictor(export).predict(x, TASKS[0]))
