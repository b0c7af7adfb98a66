"""Each ablation config switches off what its name says, in the model the config loader builds."""
from pathlib import Path

import pytest
import torch

from openstl_unistd.modules import backbone as backbone_module
from openstl_unistd.modules.backbone import BACKBONE_SCHEMES, timm_model_name
from openstl_unistd.modules.pretrained import PretrainedWeightsNotFoundError
from openstl_unistd.modules.ra_moe import RAMoELoRA
from openstl_unistd.modules.temporal import TemporalModule
from openstl_unistd.engine.analysis import build_structure
from openstl_unistd.engine.config import build_model, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs/unistd'
SMALL = {'model.backbone': 'vit_tiny_patch16_224', 'model.pretrained': False, 'model.backbone_kwargs.depth': 2,
         'model.hidden_channels': 8}
"""A tiny random backbone for the ablations that do not ablate the backbone."""


def small_model(config, **extra):
    torch.manual_seed(0)
    return build_model(load_config(CONFIGS / config, {**SMALL, **extra}))


def adapters(model):
    return [m for m in model.modules() if isinstance(m, RAMoELoRA)]


def attention_adapters(model):
    return [(block.attn.qkv.adapter, block.attn.proj.adapter) for block in model.backbone.blocks]


def test_no_temporal_removes_the_temporal_module_of_every_block_and_keeps_ra_moe():
    base, ablated = small_model('multi4.py'), small_model('ablations/no_temporal.py')
    assert sorted(ablated.tasks) == sorted(base.tasks)
    assert all(isinstance(block.temporal, TemporalModule) for block in base.backbone.blocks)
    assert all(block.temporal is None for block in ablated.backbone.blocks)
    assert not any(isinstance(m, TemporalModule) for m in ablated.modules())
    for (qkv, proj), (base_qkv, base_proj) in zip(attention_adapters(ablated), attention_adapters(base)):
        assert (qkv.num_experts, proj.num_experts) == (base_qkv.num_experts, base_proj.num_experts)
        assert qkv.rank.requires_grad and proj.rank.requires_grad


def test_no_moe_is_one_fixed_rank_lora_of_full_width_and_no_temporal_module():
    base, ablated = small_model('multi4.py'), small_model('ablations/no_moe.py')
    assert sorted(ablated.tasks) == sorted(base.tasks)
    assert {m.num_experts for m in adapters(base)} != {1}
    assert all(m.rank.requires_grad and not m.frozen for m in adapters(base))
    assert len(adapters(ablated)) == 2 * len(ablated.backbone.blocks)
    for qkv, proj in attention_adapters(ablated):
        for adapter in (qkv, proj):
            assert adapter.num_experts == 1
            assert adapter.frozen and not adapter.rank.requires_grad
            assert torch.equal(adapter.rank, torch.full_like(adapter.rank, adapter.max_rank))
            assert adapter.rank_mask().all()
    assert all(block.temporal is None for block in ablated.backbone.blocks)


def test_the_initialization_study_serves_table_5s_tasks_from_clip():
    cfg = load_config(CONFIGS / 'ablations/init_base.py')
    assert sorted(cfg.tasks) == ['bair', 'cityscapes', 'kth']
    assert (cfg.model.backbone, cfg.model.pretrained) == ('clip', True)


def requested_weights(config, monkeypatch):
    """The Hugging Face repository ``build_model`` asks for (``None``: no file read) and the built structure."""
    asked = []

    def find_cached_weights(repo):
        asked.append(repo)
        return None

    monkeypatch.setattr(backbone_module, 'find_cached_weights', find_cached_weights)
    cfg = load_config(CONFIGS / config, {'model.backbone_kwargs.depth': 1})
    try:
        build_model(cfg)
    except PretrainedWeightsNotFoundError:
        pass
    return (asked or [None])[0], cfg, build_structure(cfg)


def hf_repo(scheme):
    """The Hugging Face repository timm gives for a scheme's model."""
    from timm.models import get_pretrained_cfg

    return get_pretrained_cfg(BACKBONE_SCHEMES[scheme].model_name).hf_hub_id


def architecture(model):
    block = model.backbone.blocks[0]
    return type(model.backbone.norm_pre).__name__, type(block.mlp.act).__name__


@pytest.mark.parametrize('config, scheme', [
    ('ablations/init_imagenet.py', 'imagenet'), ('ablations/init_laion.py', 'laion'),
    ('ablations/init_random.py', 'random')])
def test_an_init_config_builds_its_scheme_not_clip(config, scheme, monkeypatch):
    base_repo, base_cfg, base = requested_weights('ablations/init_base.py', monkeypatch)
    repo, cfg, model = requested_weights(config, monkeypatch)
    assert sorted(cfg.tasks) == sorted(base_cfg.tasks)
    assert cfg.model.backbone == scheme != base_cfg.model.backbone
    assert timm_model_name(cfg.model.backbone) == BACKBONE_SCHEMES[scheme].model_name != timm_model_name('clip')
    assert base_repo == hf_repo('clip') is not None
    if scheme == 'random':
        assert repo is None and cfg.model.pretrained is False
        assert architecture(model) == architecture(base)
    else:
        assert repo == hf_repo(scheme) != base_repo
        assert architecture(model) != architecture(base)


def test_the_imagenet_and_laion_schemes_differ_in_architecture_as_their_timm_models(monkeypatch):
    shapes = {config: architecture(requested_weights(f'ablations/{config}.py', monkeypatch)[2])
              for config in ('init_base', 'init_imagenet', 'init_laion')}
    assert shapes == {'init_base': ('LayerNorm', 'QuickGELU'), 'init_imagenet': ('Identity', 'GELU'),
                      'init_laion': ('LayerNorm', 'GELU')}


def decoder_skips(model, task):
    """What the decoder of ``task`` is given as its skip input in one forward pass."""
    seen = []
    handle = model.decoders[task].register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    spec = model.tasks[task]
    with torch.no_grad():
        out = model(torch.randn(1, *spec.input_shape), task)
    handle.remove()
    assert out.shape[1:] == spec.output_shape
    return seen


def test_task_ends_demo_adds_a_wave_task_whose_rollout_and_direct_decoding_differ():
    demo, study = small_model('demo.py'), small_model('ablations/task_ends_demo.py')
    assert set(study.tasks) - set(demo.tasks) == {'demo_wave'}
    wave = study.tasks['demo_wave']
    assert wave.input_frames < wave.output_frames
    direct = small_model('ablations/task_ends_demo.py', **{'model.decode': 'direct'})
    assert (study.decode, direct.decode) == ('rollout', 'direct')
    assert study.pass_frames('demo_wave') == wave.input_frames
    assert direct.pass_frames('demo_wave') == wave.output_frames
    assert len(decoder_skips(study, 'demo_wave')) > len(decoder_skips(direct, 'demo_wave')) == 1


def test_task_ends_demo_without_skip_gives_the_decoder_no_skip():
    with_skip = small_model('ablations/task_ends_demo.py')
    without = small_model('ablations/task_ends_demo.py', **{'model.skip': False})
    assert with_skip.skip is True and without.skip is False
    assert all(isinstance(s, torch.Tensor) for s in decoder_skips(with_skip, 'demo_digits'))
    assert decoder_skips(without, 'demo_digits') == [None]
