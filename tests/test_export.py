"""Adapter files: exports hold only what was trained, reproduce the checkpoint, and check their backbone."""
import json
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open

from openstl_unistd import load_model
from openstl_unistd.core.scaling import Scaling
from openstl_unistd.modules.pretrained import file_sha256
from openstl_unistd.engine.cli import run_tool
from openstl_unistd.modules.adapter import backbone_keys
from openstl_unistd.inference.export import export_model
from openstl_unistd.inference.model_card import CARD_KEY

from .test_forecast_files import _tool
from .tools import ROOT
from .trained import build, make_card, save_checkpoint, tiny_vit_file

RAIN = dict(name='rain', input_frames=4, output_frames=3, channels=2, height=16, width=16, encoder_depth=1)
SCALINGS = {'demo_traffic': Scaling.of(0.0, 255.0), 'rain': Scaling.of([280.0, 1.0], [5.0, 2.0])}


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A checkpoint of a tiny UniSTD whose backbone came from a weights file, and that file."""
    folder = tmp_path_factory.mktemp('pretrained')
    weights = tiny_vit_file(folder, seed=0)
    card = make_card(['demo_traffic', RAIN], SCALINGS, pretrained=str(weights))
    model = build(card)
    return save_checkpoint(model, card, folder / 'best.ckpt'), weights, model


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {'demo_traffic': rng.uniform(0, 255, (2, 4, 2, 32, 32)).astype(np.float32),
            'rain': rng.normal(280, 5, (2, 5, 2, 16, 16)).astype(np.float32)}


def test_export_holds_only_the_trained_tensors_and_the_card(pretrained, tmp_path):
    checkpoint, weights, model = pretrained
    summary = export_model(checkpoint, tmp_path / 'adapters.safetensors')
    state = model.state_dict()
    frozen = backbone_keys(model)
    assert frozen and all(k.startswith('backbone.') for k in frozen)
    assert 'backbone.blocks.0.block.attn.qkv.base_layer.weight' in frozen and 'backbone.norm.weight' in frozen
    with safe_open(str(summary.path), framework='pt') as handle:
        keys, metadata = set(handle.keys()), handle.metadata()
    assert keys == set(state) - frozen
    for part in ('encoders.rain.', 'decoders.demo_traffic.', 'backbone.blocks.1.block.attn.qkv.adapter.lora_A',
                 'backbone.blocks.0.block.attn.proj.adapter.router.weight', 'backbone.blocks.0.temporal.ffn.0.weight',
                 'backbone.blocks.1.temporal.adapter.rank', 'backbone.blocks.1.block.attn.qkv.adapter.rank_frozen'):
        assert any(k.startswith(part) for k in keys), part
    trained_elements = sum(v.numel() for k, v in state.items() if k not in frozen)
    assert summary.elements == trained_elements and not summary.backbone_stored
    assert summary.bytes < summary.path.stat().st_size < summary.bytes + 64 * 1024     # tensors + header only
    assert summary.path.stat().st_size < 0.6 * checkpoint.stat().st_size
    card = json.loads(metadata[CARD_KEY])
    assert card['backbone'] == {'scheme': 'vit_tiny_patch16_224', 'timm_name': 'vit_tiny_patch16_224',
                                'file': str(weights), 'sha256': file_sha256(weights)}
    assert card['scalings']['rain'] == {'mean': [280.0, 1.0], 'std': [5.0, 2.0]}
    assert [t['name'] for t in card['tasks']] == ['demo_traffic', 'rain'] and card['model']['hidden_channels'] == 8


def test_export_with_its_backbone_file_reproduces_the_checkpoint_exactly(pretrained, tmp_path):
    checkpoint, weights, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    full, light = load_model(checkpoint), load_model(export, backbone_file=weights)
    assert light.scalings == full.scalings and light.tasks == full.tasks
    for task, x in _inputs().items():
        assert np.array_equal(light.predict(x, task, horizon=6), full.predict(x, task, horizon=6)), task
    assert np.array_equal(load_model(export).predict(_inputs()['rain'], 'rain'),           # the recorded path
                          full.predict(_inputs()['rain'], 'rain'))


def test_a_different_backbone_file_is_refused_by_its_hash(pretrained, tmp_path):
    checkpoint, weights, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    other = tiny_vit_file(tmp_path, seed=1, name='other_vit.safetensors')
    with pytest.raises(ValueError) as error:
        load_model(export, backbone_file=other)
    message = str(error.value)
    assert f"backbone file '{other}' has sha256 {file_sha256(other)}" in message
    assert f"trained with '{weights}' (sha256 {file_sha256(weights)})" in message
    with pytest.raises(FileNotFoundError, match='give the file it was trained with'):
        load_model(export, backbone_file=tmp_path / 'moved.safetensors')


def test_a_checkpoint_whose_backbone_is_not_its_file_is_not_exported(pretrained, tmp_path):
    checkpoint, _, model = pretrained
    state = torch.load(checkpoint, weights_only=True)
    state['state_dict']['model.backbone.blocks.0.block.mlp.fc1.weight'] += 1e-3
    torch.save(state, tmp_path / 'changed.ckpt')
    with pytest.raises(ValueError, match=r"1 backbone weights differ from .*blocks.0.block.mlp.fc1.weight"):
        export_model(tmp_path / 'changed.ckpt', tmp_path / 'x.safetensors')


def test_a_random_backbone_is_stored_and_needs_no_file(tmp_path):
    card = make_card([RAIN], {'rain': SCALINGS['rain']})
    assert card.backbone == {'scheme': 'vit_tiny_patch16_224', 'timm_name': 'vit_tiny_patch16_224', 'file': None,
                             'sha256': None}
    model = build(card, seed=3)
    checkpoint = save_checkpoint(model, card, tmp_path / 'random.ckpt')
    summary = export_model(checkpoint, tmp_path / 'random.safetensors')
    with safe_open(str(summary.path), framework='pt') as handle:
        assert set(handle.keys()) == set(model.state_dict())
    assert summary.backbone_stored
    x = _inputs(1)['rain']
    assert np.array_equal(load_model(summary.path).predict(x, 'rain'), load_model(checkpoint).predict(x, 'rain'))


def test_export_tool_writes_the_file_and_reports_sizes(pretrained, tmp_path, capsys):
    checkpoint, weights, _ = pretrained
    out = tmp_path / 'cli.safetensors'
    assert run_tool(_tool('export'), ['--ckpt', str(checkpoint), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and 'backbone not stored (restored from its file)' in printed and 'MiB' in printed
    assert run_tool(_tool('export'), ['--ckpt', str(checkpoint), '--out', str(tmp_path / 'x.pt')]) == 2
    assert 'an export is a .safetensors file' in capsys.readouterr().err


def test_predict_with_a_config_and_an_export_uses_the_card_and_warns(pretrained, tmp_path, capsys):
    checkpoint, weights, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    config = ROOT / 'configs/unistd/demo.py'                # its model would not fit the export's tensors
    np.save(tmp_path / 'past.npy', _inputs()['rain'])
    common = ['--task', 'rain', '--input', str(tmp_path / 'past.npy'), '--quiet']
    assert run_tool(_tool('predict'), ['--ckpt', str(checkpoint), *common, '--out', str(tmp_path / 'a.npy')]) == 0
    with pytest.warns(UserWarning, match=re.escape(f"{export}: config '{config}' ignored: the export carries its model card")):
        status = run_tool(_tool('predict'), ['--ckpt', str(export), '-c', str(config), '--cfg-options',
                                             'model.hidden_channels=16', *common, '--out', str(tmp_path / 'b.npy')])
    assert status == 0 and 'error' not in capsys.readouterr().err
    assert np.array_equal(np.load(tmp_path / 'b.npy'), np.load(tmp_path / 'a.npy'))


def test_a_trained_pretrained_backbone_is_stored_and_reproduced(pretrained, tmp_path):
    """``train_backbone=True``: the backbone no longer equals its file, so the export keeps it (no hash check)."""
    checkpoint, weights, _ = pretrained
    card = make_card(['demo_traffic', RAIN], SCALINGS, pretrained=str(weights), train_backbone=True)
    model = build(card, seed=4)
    with torch.no_grad():
        model.backbone.blocks[0].block.mlp.fc1.weight.add_(1e-2)            # what training it would do
    source = save_checkpoint(model, card, tmp_path / 'trained.ckpt')
    summary = export_model(source, tmp_path / 'trained.safetensors')
    with safe_open(str(summary.path), framework='pt') as handle:
        assert 'backbone.blocks.0.block.mlp.fc1.weight' in set(handle.keys())
    assert summary.backbone_stored
    x = _inputs(2)['rain']
    assert np.array_equal(load_model(summary.path).predict(x, 'rain'), load_model(source).predict(x, 'rain'))
