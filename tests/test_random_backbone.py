"""A random backbone is a function of its seed (``backbone_seed``) alone, so an export can re-derive it."""
import pytest
import torch

from openstl_unistd.modules.backbone import RANDOM_BACKBONE_SEED, build_backbone

TINY = dict(name='vit_tiny_patch16_224', depth=1)


def _equal(a, b):
    one, other = a.state_dict(), b.state_dict()
    return one.keys() == other.keys() and all(torch.equal(one[k], other[k]) for k in one)


def test_a_random_backbone_depends_on_its_seed_not_on_the_global_random_state():
    torch.manual_seed(1)
    first = build_backbone(**TINY)
    torch.manual_seed(2)
    second = build_backbone(**TINY)
    assert _equal(first, second)
    assert not _equal(first, build_backbone(**TINY, seed=RANDOM_BACKBONE_SEED + 1))


def test_the_derivation_is_timm_create_model_after_torch_manual_seed():
    import timm

    torch.manual_seed(5)
    reference = timm.create_model('vit_tiny_patch16_224', depth=1, num_classes=0)
    derived = build_backbone(**TINY, seed=5)
    state = reference.state_dict()
    for key, value in derived.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_deriving_a_random_backbone_leaves_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    build_backbone(**TINY)
    assert torch.equal(torch.rand(4), expected)


def test_unistd_passes_its_backbone_seed(tiny_unistd):
    task = dict(name='rain', input_frames=2, output_frames=2, channels=1, height=16, width=16, encoder_depth=1)
    default, other = tiny_unistd([task]), tiny_unistd([task], backbone_seed=3)
    weight = 'blocks.0.attn.qkv.base_layer.weight'
    assert torch.equal(default.backbone.state_dict()[weight],
                       build_backbone('vit_tiny_patch16_224', depth=2).blocks[0].attn.qkv.weight)
    assert not torch.equal(default.backbone.state_dict()[weight], other.backbone.state_dict()[weight])
    assert torch.equal(other.backbone.state_dict()[weight],
                       build_backbone('vit_tiny_patch16_224', seed=3, depth=2).blocks[0].attn.qkv.weight)


def test_a_seed_with_a_pretrained_backbone_changes_nothing(tmp_path):
    from .trained import tiny_vit_file

    weights = tiny_vit_file(tmp_path)
    one = build_backbone('vit_tiny_patch16_224', pretrained=weights, depth=2)
    other = build_backbone('vit_tiny_patch16_224', pretrained=weights, seed=9, depth=2)
    assert _equal(one, other)
    with pytest.raises(TypeError, match='seed must be an integer'):
        build_backbone(**TINY, seed='0')
