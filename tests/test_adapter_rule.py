"""One adapter rule: a new adapter type, declared only by subclassing ``Adapter``, trains, exports and reloads."""
import numpy as np
import pytest
import torch
from torch import nn

from openstl_unistd import load_predictor
from openstl_unistd.methods.unistd import UniSTDMethod
from openstl_unistd.models.registry import MODEL_TYPES
from openstl_unistd.models.unistd import UniSTD
from openstl_unistd.modules.adapter import Adapter, adapter_part, adapters, backbone_keys
from openstl_unistd.inference.export import export_model
from openstl_unistd.inference.extension import Extension

from .trained import build, make_card, save_checkpoint, tiny_vit_file


class ChannelScale(Adapter):
    """``x · (1 + s)``, one scale per channel: an adapter type the package does not know."""

    DEFAULT_PART = 'channel scales'

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + self.scale)


class ScaledUniSTD(UniSTD):
    """UniSTD with a :class:`ChannelScale` after every block's MLP, a frozen layer wrapped beside it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for block in self.backbone.blocks:
            block.mlp.fc2 = nn.Sequential(block.mlp.fc2, ChannelScale(self.embed_dim))


@pytest.fixture
def scaled(monkeypatch, tmp_path):
    """A trained-like ScaledUniSTD from a backbone weights file, its checkpoint and that file."""
    monkeypatch.setitem(MODEL_TYPES, 'ScaledUniSTD', ScaledUniSTD)
    weights = tiny_vit_file(tmp_path)
    card = make_card(['taxibj'], type='ScaledUniSTD', pretrained=str(weights))
    model = build(card)
    return model, save_checkpoint(model, card, tmp_path / 'scaled.ckpt'), weights


def _scale_names(model):
    return [name for name, _ in model.named_parameters() if name.endswith('.scale')]


def test_the_new_adapter_is_adapter_everywhere_and_the_layer_it_wraps_is_backbone(scaled):
    model, _, _ = scaled
    names = _scale_names(model)
    assert names == ['backbone.blocks.0.mlp.fc2.1.scale', 'backbone.blocks.1.mlp.fc2.1.scale']
    frozen = backbone_keys(model)
    assert not frozen & set(names) and 'backbone.blocks.0.mlp.fc2.0.weight' in frozen
    found = adapters(model)
    assert adapter_part(names[0], found) == 'channel scales'
    assert adapter_part('backbone.blocks.0.temporal.adapter.router.weight', found) == 'routers'  # nested adapter
    assert adapter_part('backbone.blocks.0.temporal.ffn.0.weight', found) == 'temporal FFN'
    parts = model.parameter_breakdown()
    assert parts['channel scales'].trainable == 2 * model.embed_dim and parts['channel scales'].frozen == 0
    vit_parameters = sum(v.numel() for k, v in model.named_parameters() if k in frozen)
    assert parts['backbone (pretrained)'].frozen == vit_parameters and parts['backbone (pretrained)'].trainable == 0


def test_the_new_adapter_trains_and_the_backbone_does_not(scaled):
    model, _, _ = scaled
    model.train()
    method = UniSTDMethod(model, list(model.tasks.values()))
    weights = method.weight_parameters()
    optimizer = torch.optim.AdamW(weights, lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    spec = model.tasks['taxibj']
    torch.manual_seed(0)
    model(torch.randn(2, *spec.input_shape), 'taxibj').square().mean().backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert set(_scale_names(model)) <= changed
    assert not changed & backbone_keys(model)
    assert {id(p) for p in weights} >= {id(p) for n, p in model.named_parameters() if n.endswith('.scale')}


def test_the_new_adapter_is_exported_and_reloads_with_the_backbone_file(scaled, tmp_path):
    model, checkpoint, weights = scaled
    summary = export_model(checkpoint, tmp_path / 'scaled.safetensors')
    from safetensors import safe_open

    with safe_open(str(summary.path), framework='pt') as handle:
        keys = set(handle.keys())
    assert set(_scale_names(model)) <= keys and not keys & backbone_keys(model)
    x = np.random.default_rng(0).normal(size=(2, *model.tasks['taxibj'].input_shape)).astype(np.float32)
    full, light = load_predictor(checkpoint), load_predictor(summary.path, backbone_file=weights)
    assert np.array_equal(light.predict(x, 'taxibj'), full.predict(x, 'taxibj'))
    assert not np.array_equal(light.predict(x, 'taxibj'), _without_scales(light).predict(x, 'taxibj'))


def test_an_extension_starts_from_the_new_adapter_of_an_export(scaled, tmp_path):
    model, checkpoint, weights = scaled
    export = export_model(checkpoint, tmp_path / 'scaled.safetensors').path
    card = make_card(['taxibj', 'kth'], type='ScaledUniSTD', pretrained=str(weights))
    extended = card.build_model(pretrained=str(weights))
    extension = Extension(export, ('encoders.kth', 'decoders.kth'), tuple(card.tasks))
    extension.apply(extended, backbone_file=weights)
    parameters = dict(extended.named_parameters())
    for name in _scale_names(model):
        assert torch.equal(parameters[name], model.state_dict()[name]) and not parameters[name].requires_grad
    assert parameters['decoders.kth.readout.weight'].requires_grad


def _without_scales(predictor):
    """The predictor with its channel scales zeroed: the check above is not vacuous."""
    with torch.no_grad():
        for name, parameter in predictor.model.named_parameters():
            if name.endswith('.scale'):
                parameter.zero_()
    return predictor
