"""Loading ViT-B weights from files in open_clip/OpenAI and timm layouts, and the errors when absent."""
import time

import pytest
import timm
import torch
from safetensors.torch import save_file

from openstl_unistd.modules.backbone import build_backbone
from openstl_unistd.modules.pretrained import PretrainedWeightsNotFoundError, read_state_dict


@pytest.fixture(scope='module')
def open_clip_file(tmp_path_factory):
    """A full open_clip ViT-B-16 (image and text towers, GELU), randomly initialized, torch-saved."""
    open_clip = pytest.importorskip('open_clip')
    torch.manual_seed(0)
    model = open_clip.create_model('ViT-B-16', pretrained=None).eval()
    path = tmp_path_factory.mktemp('weights') / 'open_clip_ViT-B-16.pt'
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope='module')
def timm_file(tmp_path_factory):
    """timm's CLIP ViT-B/16 (QuickGELU), randomly initialized, saved as safetensors."""
    torch.manual_seed(1)
    model = timm.create_model('vit_base_patch16_clip_quickgelu_224', num_classes=0).eval()
    path = tmp_path_factory.mktemp('weights') / 'vit_b16_clip.safetensors'
    save_file(model.state_dict(), str(path))
    return model, path


def open_clip_tower(visual, tokens):
    """open_clip's own ln_pre → transformer → ln_post on tokens (B, N, 768)."""
    x = visual.ln_pre(tokens)
    if not getattr(visual.transformer, 'batch_first', True):
        x = visual.transformer(x.transpose(0, 1)).transpose(0, 1)
    else:
        x = visual.transformer(x)
    return visual.ln_post(x)


def test_open_clip_file_loads_with_the_file_weights_and_outputs(open_clip_file):
    model, path = open_clip_file
    state = model.state_dict()
    backbone = build_backbone('laion', pretrained=path)
    block = backbone.blocks[5]
    assert torch.equal(block.attn.qkv.weight, state['visual.transformer.resblocks.5.attn.in_proj_weight'])
    assert torch.equal(block.attn.proj.bias, state['visual.transformer.resblocks.5.attn.out_proj.bias'])
    assert torch.equal(block.mlp.fc1.weight, state['visual.transformer.resblocks.5.mlp.c_fc.weight'])
    assert torch.equal(backbone.norm_pre.weight, state['visual.ln_pre.weight'])
    assert torch.equal(backbone.norm.bias, state['visual.ln_post.bias'])
    assert all(not p.requires_grad for p in backbone.parameters())
    tokens = torch.randn(2, 64, 768)
    with torch.no_grad():
        torch.testing.assert_close(backbone(tokens), open_clip_tower(model.visual, tokens), rtol=1e-4, atol=1e-4)
        # the `clip` scheme reads the same (OpenAI) layout but uses QuickGELU, as OpenAI CLIP does
        clip = build_backbone('clip', pretrained=path)
        assert torch.equal(clip.blocks[5].attn.qkv.weight, block.attn.qkv.weight)
        assert not torch.allclose(clip(tokens), backbone(tokens), atol=1e-3)


def test_timm_file_loads_with_the_file_weights_and_outputs(timm_file):
    model, path = timm_file
    backbone = build_backbone('clip', pretrained=str(path))
    for name, value in model.state_dict().items():
        if name.startswith('blocks.11.'):
            assert torch.equal(backbone.state_dict()[name], value), name
    tokens = torch.randn(1, 16, 768)
    with torch.no_grad():
        expected = model.norm(model.blocks(model.norm_pre(tokens)))
        torch.testing.assert_close(backbone(tokens), expected, rtol=0, atol=0)


def _fake_hf_cache(root, repo, target):
    """The Hugging Face hub cache layout: models--org--name/{refs/main, snapshots/<rev>/file}."""
    folder = root / ('models--' + repo.replace('/', '--'))
    snapshot = folder / 'snapshots' / ('0' * 40)
    snapshot.mkdir(parents=True)
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text('0' * 40)
    (snapshot / 'model.safetensors').symlink_to(target)


def test_pretrained_true_reads_the_hugging_face_cache(timm_file, tmp_path, monkeypatch):
    from huggingface_hub import constants

    model, path = timm_file
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path))
    _fake_hf_cache(tmp_path, 'timm/vit_base_patch16_clip_224.openai', path)
    backbone = build_backbone('clip', pretrained=True)
    assert torch.equal(backbone.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)


def test_missing_file_fails_at_once_naming_scheme_file_and_source(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsNotFoundError) as error:
        build_backbone('clip', pretrained='/nowhere/ViT-B-16.pt')
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    assert "backbone 'clip'" in message and '/nowhere/ViT-B-16.pt' in message
    assert 'huggingface-cli download timm/vit_base_patch16_clip_224.openai' in message
    assert 'openaipublic' in message


def test_missing_cache_fails_at_once_naming_repo_and_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsNotFoundError) as error:
        build_backbone('laion', pretrained=True)
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    assert "backbone 'laion'" in message and 'timm/vit_base_patch16_clip_224.laion2b' in message
    assert str(tmp_path) in message and 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K' in message


def test_a_file_of_another_architecture_names_the_missing_or_misshapen_key(tmp_path):
    tiny = timm.create_model('vit_tiny_patch16_224', depth=2, num_classes=0)
    path = tmp_path / 'tiny.safetensors'
    save_file(tiny.state_dict(), str(path))
    with pytest.raises(ValueError, match=r"tiny.safetensors: 122 of 148 backbone weights are missing, e.g. "
                                         r"\['norm_pre.weight', 'norm_pre.bias', 'blocks.2.norm1.weight'\]"):
        build_backbone('clip', pretrained=path)
    small = timm.create_model('vit_small_patch16_224', depth=2, num_classes=0)
    path = tmp_path / 'small.safetensors'
    save_file(small.state_dict(), str(path))
    with pytest.raises(ValueError, match=r"small.safetensors: key 'blocks.0.norm1.weight' has shape \(384,\), "
                                         r"expected \(192,\)"):
        build_backbone('vit_tiny_patch16_224', pretrained=path, depth=2)


def test_unreadable_or_unsupported_files_name_the_file(tmp_path):
    garbage = tmp_path / 'broken.pt'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match=r'broken.pt: cannot read weights'):
        build_backbone('clip', pretrained=garbage)
    npz = tmp_path / 'weights.npz'
    npz.write_bytes(b'')
    with pytest.raises(ValueError, match=r"unsupported weights file type '.npz'"):
        build_backbone('clip', pretrained=npz)


@pytest.mark.filterwarnings('ignore::FutureWarning')
def test_torchscript_archives_are_read_like_openai_releases(tmp_path):
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    path = tmp_path / 'released.pt'
    scripted.save(str(path))
    state = read_state_dict(path)
    assert torch.equal(state['0.weight'], scripted.state_dict()['0.weight'])


def test_scheme_and_name_errors():
    with pytest.raises(ValueError, match="'random' is the untrained CLIP architecture"):
        build_backbone('random', pretrained=True)
    with pytest.raises(ValueError, match=r"unknown backbone 'vit_bass'"):
        build_backbone('vit_bass')
