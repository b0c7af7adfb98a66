"""Adapter files: exports hold only what was trained, reproduce the checkpoint, and check their backbone."""
import json
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open

from openstl_unistd import load_predictor
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
    assert 'backbone.blocks.0.attn.qkv.base_layer.weight' in frozen and 'backbone.norm.weight' in frozen
    with safe_open(str(summary.path), framework='pt') as handle:
        keys, metadata = set(handle.keys()), handle.metadata()
    assert keys == set(state) - frozen
    for part in ('encoders.rain.', 'decoders.demo_traffic.', 'backbone.blocks.1.attn.qkv.adapter.lora_A',
                 'backbone.blocks.0.attn.proj.adapter.router.weight', 'backbone.blocks.0.temporal.ffn.0.weight',
                 'backbone.blocks.1.temporal.adapter.rank', 'backbone.blocks.1.attn.qkv.adapter.rank_frozen'):
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
    full, light = load_predictor(checkpoint), load_predictor(export, backbone_file=weights)
    assert light.scalings == full.scalings and light.tasks == full.tasks
    for task, x in _inputs().items():
        assert np.array_equal(light.predict(x, task, horizon=6), full.predict(x, task, horizon=6)), task
    assert np.array_equal(load_predictor(export).predict(_inputs()['rain'], 'rain'),           # the recorded path
                          full.predict(_inputs()['rain'], 'rain'))


def test_a_different_backbone_file_is_refused_by_its_hash(pretrained, tmp_path):
    checkpoint, weights, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    other = tiny_vit_file(tmp_path, seed=1, name='other_vit.safetensors')
    with pytest.raises(ValueError) as error:
        load_predictor(export, backbone_file=other)
    message = str(error.value)
    assert f"backbone file '{other}' has sha256 {file_sha256(other)}" in message
    assert f"trained with '{weights}' (sha256 {file_sha256(weights)})" in message
    with pytest.raises(FileNotFoundError, match='give the file it was trained with'):
        load_predictor(export, backbone_file=tmp_path / 'moved.safetensors')


def test_a_checkpoint_whose_backbone_is_not_its_file_is_not_exported(pretrained, tmp_path):
    checkpoint, _, model = pretrained
    state = torch.load(checkpoint, weights_only=True)
    state['state_dict']['model.backbone.blocks.0.mlp.fc1.weight'] += 1e-3
    torch.save(state, tmp_path / 'changed.ckpt')
    with pytest.raises(ValueError, match=r"1 backbone weights differ from .*blocks.0.mlp.fc1.weight"):
        export_model(tmp_path / 'changed.ckpt', tmp_path / 'x.safetensors')


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
        model.backbone.blocks[0].mlp.fc1.weight.add_(1e-2)            # what training it would do
    source = save_checkpoint(model, card, tmp_path / 'trained.ckpt')
    summary = export_model(source, tmp_path / 'trained.safetensors')
    with safe_open(str(summary.path), framework='pt') as handle:
        assert 'backbone.blocks.0.mlp.fc1.weight' in set(handle.keys())
    assert summary.backbone_stored
    x = _inputs(2)['rain']
    assert np.array_equal(load_predictor(summary.path).predict(x, 'rain'), load_predictor(source).predict(x, 'rain'))


# --- hashes: a changed export is refused, naming the file ------------------------------------------

def _rewrite(export, out, change_tensors=None, change_card=None, rehash_card=False):
    """Copy ``export`` to ``out`` with its tensors and/or card changed, the recorded hashes kept (unless
    ``rehash_card``: the card's hash is recomputed, as by someone who knows the format)."""
    import hashlib

    from safetensors.torch import load_file, save_file

    with safe_open(str(export), framework='pt') as handle:
        metadata = dict(handle.metadata())
    tensors = load_file(str(export))
    if change_tensors is not None:
        change_tensors(tensors)
    if change_card is not None:
        card = json.loads(metadata[CARD_KEY])
        change_card(card)
        metadata[CARD_KEY] = json.dumps(card, sort_keys=True)
        if rehash_card:
            metadata['card_sha256'] = hashlib.sha256(metadata[CARD_KEY].encode()).hexdigest()
    save_file(tensors, str(out), metadata=metadata)
    return out


def _zero_one_lora_tensor(tensors):
    name = next(k for k in sorted(tensors) if k.endswith('adapter.lora_A'))
    tensors[name] = torch.zeros_like(tensors[name])


def test_an_export_with_one_lora_tensor_zeroed_is_refused_naming_the_file(pretrained, tmp_path, capsys):
    checkpoint, weights, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    x = _inputs()['rain']
    assert np.array_equal(load_predictor(export).predict(x, 'rain'), load_predictor(checkpoint).predict(x, 'rain'))
    tampered = _rewrite(export, tmp_path / 'tampered.safetensors', change_tensors=_zero_one_lora_tensor)
    with pytest.raises(ValueError, match=re.escape(f'{tampered}: its tensors do not have the SHA-256 the export '
                                                   'records')):
        load_predictor(tampered)
    np.save(tmp_path / 'past.npy', x)
    status = run_tool(_tool('predict'), ['--ckpt', str(tampered), '--task', 'rain', '--input',
                                         str(tmp_path / 'past.npy'), '--out', str(tmp_path / 'f.npy'), '--quiet'])
    err = capsys.readouterr().err
    assert status == 2 and f'error: {tampered}: its tensors do not have the SHA-256' in err
    assert 'Traceback' not in err and not (tmp_path / 'f.npy').exists()


def test_an_export_with_a_tampered_card_is_refused_naming_the_file(pretrained, tmp_path):
    checkpoint, _, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path

    def shift_the_scaling(card):
        card['scalings']['rain']['mean'] = [0.0, 0.0]

    tampered = _rewrite(export, tmp_path / 'card.safetensors', change_card=shift_the_scaling)
    with pytest.raises(ValueError, match=re.escape(f'{tampered}: its model card does not have the SHA-256 the '
                                                   'export records')):
        load_predictor(tampered)


def test_an_export_without_hashes_is_refused(pretrained, tmp_path):
    from safetensors.torch import load_file, save_file

    checkpoint, _, _ = pretrained
    export = export_model(checkpoint, tmp_path / 'adapters.safetensors').path
    with safe_open(str(export), framework='pt') as handle:
        metadata = {k: v for k, v in handle.metadata().items() if not k.endswith('_sha256')}
    save_file(load_file(str(export)), str(tmp_path / 'bare.safetensors'), metadata=metadata)
    with pytest.raises(ValueError, match=r"bare.safetensors: the export records no SHA-256 of its tensors"):
        load_predictor(tmp_path / 'bare.safetensors')


def test_a_random_backbone_is_rederived_from_its_recorded_seed_and_checked(tmp_path):
    card = make_card([RAIN], {'rain': SCALINGS['rain']})
    assert card.backbone['seed'] == 0
    checkpoint = save_checkpoint(build(card, seed=3), card, tmp_path / 'random.ckpt')
    summary = export_model(checkpoint, tmp_path / 'random.safetensors')
    assert summary.backbone == 'seed' and not summary.backbone_stored
    with safe_open(str(summary.path), framework='pt') as handle:
        assert not any(k in backbone_keys(build(card)) for k in handle.keys())
        recorded = json.loads(handle.metadata()[CARD_KEY])['backbone']
    assert recorded['seed'] == 0 and len(recorded['weights_sha256']) == 64
    x = _inputs(1)['rain']
    assert np.array_equal(load_predictor(summary.path).predict(x, 'rain'),
                          load_predictor(checkpoint).predict(x, 'rain'))

    def other_seed(card):
        card['backbone']['seed'] = 1

    wrong = _rewrite(summary.path, tmp_path / 'seed1.safetensors', change_card=other_seed, rehash_card=True)
    with pytest.raises(ValueError, match=re.escape(f'{wrong}: the random backbone that its record derives')):
        load_predictor(wrong)


def test_a_random_backbone_that_its_seed_does_not_give_is_stored_and_hashed(tmp_path):
    """A checkpoint whose random backbone came from elsewhere (e.g. an older version's unseeded draw)."""
    card = make_card([RAIN], {'rain': SCALINGS['rain']})
    model = build(card, seed=3)
    with torch.no_grad():
        model.backbone.blocks[0].mlp.fc1.weight.mul_(1.5)
    checkpoint = save_checkpoint(model, card, tmp_path / 'random.ckpt')
    summary = export_model(checkpoint, tmp_path / 'random.safetensors')
    assert summary.backbone_stored
    x = _inputs(1)['rain']
    assert np.array_equal(load_predictor(summary.path).predict(x, 'rain'),
                          load_predictor(checkpoint).predict(x, 'rain'))

    def scale_the_backbone(tensors):
        tensors['backbone.norm.weight'] = tensors['backbone.norm.weight'] * 2

    tampered = _rewrite(summary.path, tmp_path / 'tampered.safetensors', change_tensors=scale_the_backbone)
    with pytest.raises(ValueError, match=re.escape(f'{tampered}: its tensors do not have the SHA-256')):
        load_predictor(tampered)
