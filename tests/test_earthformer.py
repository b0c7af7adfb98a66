"""Earthformer (our CuboidTransformerModel): parameter counts and outputs measured with the reference code.

Reference values below were measured with Earthformer's own ``CuboidTransformerModel`` from
amazon-science/earth-forecasting-transformer at commit 7732b03bdb366110563516c3502315deab4c2026
(src/earthformer/cuboid_transformer/cuboid_transformer.py), built with the kwargs below, in a scratch
environment outside this repository (the reference is not a dependency).
"""
import math

import pytest
import torch
from torch import nn

from openstl_unistd.models.earthformer import EarthformerCore
from openstl_unistd.modules.cuboid_attention import (CuboidCrossAttention, CuboidSelfAttention, cross_attention_mask,
                                                     cuboid_reorder, cuboid_reorder_back, self_relative_index)
from openstl_unistd.modules.cuboid_layers import CuboidPositionEmbedding
from openstl_unistd.tasks import PAPER_TASKS, TaskSpec

from .reference_models import Earthformer

_COMMON = dict(
    base_units=128, scale_alpha=1.0, enc_depth=[1, 1], dec_depth=[1, 1], enc_use_inter_ffn=True,
    dec_use_inter_ffn=True, dec_hierarchical_pos_embed=False, downsample=2, downsample_type='patch_merge',
    upsample_type='upsample', use_dec_self_global=False, dec_self_update_global=True, use_dec_cross_global=False,
    use_global_vector_ffn=False, global_dim_ratio=1, enc_attn_patterns=['axial', 'axial'],
    dec_self_attn_patterns=['axial', 'axial'], dec_cross_attn_patterns=['cross_1x1', 'cross_1x1'],
    dec_cross_last_n_frames=None, attn_drop=0.1, proj_drop=0.1, ffn_drop=0.1, num_heads=4, ffn_activation='gelu',
    gated_ffn=False, norm_layer='layer_norm', padding_type='zeros', pos_embed_type='t+h+w', use_relative_pos=True,
    self_attn_use_final_proj=True, dec_use_first_self_attn=False, z_init_method='zeros', checkpoint_level=0,
    initial_downsample_activation='leaky', attn_linear_init_mode='0', ffn_linear_init_mode='0', conv_init_mode='0',
    down_up_linear_init_mode='0', norm_init_mode='0')

# scripts/cuboid_transformer/sevir/cfg_sevir.yaml, section `model`, turned into kwargs as
# scripts/cuboid_transformer/sevir/train_cuboid_sevir.py does (patterns repeated per level, block_units=None).
SEVIR = dict(_COMMON, input_shape=(13, 384, 384, 1), target_shape=(12, 384, 384, 1), num_global_vectors=8,
             use_global_self_attn=True, separate_global_qkv=True, initial_downsample_type='stack_conv',
             initial_downsample_stack_conv_num_layers=3, initial_downsample_stack_conv_dim_list=[16, 64, 128],
             initial_downsample_stack_conv_downscale_list=[3, 2, 2],
             initial_downsample_stack_conv_num_conv_list=[2, 2, 2])

# scripts/cuboid_transformer/enso/cfg.yaml, section `model`, as scripts/cuboid_transformer/enso/train_cuboid_enso.py.
ENSO = dict(_COMMON, input_shape=(12, 24, 48, 1), target_shape=(14, 24, 48, 1), base_units=64, num_global_vectors=0,
            use_global_self_attn=False, separate_global_qkv=False, initial_downsample_type='conv',
            initial_downsample_scale=[1, 1, 2], initial_downsample_conv_layers=2, final_upsample_conv_layers=1)

# Small configurations; together they exercise every option the implementation offers.
SMALL_DEFAULTS = dict(input_shape=(8, 16, 16, 2), target_shape=(8, 16, 16, 2), base_units=16, enc_depth=[1, 1],
                      dec_depth=[1, 1], initial_downsample_scale=2)
# 5 frames: the 4-frame cuboids pad, and the n_temporal=2 cross-attention pads memory (left) and queries (right)
SMALL_IGNORE_PADDING = dict(input_shape=(5, 24, 24, 1), target_shape=(5, 24, 24, 1), base_units=16, enc_depth=[1, 1],
                            dec_depth=[2, 2], initial_downsample_scale=2, num_global_vectors=0, checkpoint_level=0)
SMALL_OPTIONS = dict(
    input_shape=(6, 16, 16, 1), target_shape=(4, 16, 16, 1), base_units=16, enc_depth=[2, 1], dec_depth=[1, 2],
    initial_downsample_scale=(2, 2), padding_type='nearest', enc_cuboid_size=[(4, 3, 3), (2, 2, 2)],
    enc_cuboid_strategy=[('l', 'l', 'l'), ('d', 'l', 'd')], enc_shift_size=[(1, 1, 1), (0, 0, 0)],
    dec_self_cuboid_size=[(4, 3, 3)], dec_self_cuboid_strategy=[('l', 'l', 'l')], dec_self_shift_size=[(0, 1, 1)],
    dec_cross_cuboid_hw=[(2, 2), (2, 2)], dec_cross_n_temporal=[1, 2], dec_cross_shift_hw=[(1, 1), (0, 0)],
    dec_cross_last_n_frames=4, num_global_vectors=3, separate_global_qkv=True, use_global_self_attn=True,
    global_dim_ratio=2, gated_ffn=True, pos_embed_type='t+h+w', z_init_method='mean', dec_hierarchical_pos_embed=True,
    dec_use_first_self_attn=True, enc_use_inter_ffn=False, dec_use_inter_ffn=False, dec_self_update_global=False,
    ffn_activation='gelu', num_heads=2, final_upsample_conv_layers=1)
SMALL_PATTERNS = dict(
    input_shape=(5, 32, 32, 1), target_shape=(3, 32, 32, 1), base_units=16, enc_depth=[1, 1], dec_depth=[1, 1],
    initial_downsample_scale=4, padding_type='zeros', num_global_vectors=2,
    enc_attn_patterns=['spatial_lg_2', 'axial_space_dilate_2'], dec_self_attn_patterns=['video_swin_2x2', 'divided_st'],
    dec_cross_attn_patterns=['cross_2x2_heter', 'cross_1x1_lg'], z_init_method='last')
SEVIR_48 = dict(SEVIR, input_shape=(13, 48, 48, 1), target_shape=(12, 48, 48, 1))  # SEVIR's options, smaller frames
ENSO_8x16 = dict(ENSO, input_shape=(12, 8, 16, 1), target_shape=(14, 8, 16, 1))  # ENSO's options, smaller frames

# Parameter counts of the reference: (total, stem = initial_encoder, head = final_decoder + dec_final_proj).
REFERENCE_COUNTS = {
    'sevir': (SEVIR, 8659677, 357008, 750385),  # cfg_sevir.yaml
    'enso': (ENSO, 1394325, 46272, 74049),  # enso/cfg.yaml
    'small_defaults': (SMALL_DEFAULTS, 161786, 3840, 7058),  # the reference's defaults, small
    'small_options': (SMALL_OPTIONS, 492603, 3696, 4689),  # separate global qkv, ratio 2, gated FFN, ...
}

# Reference outputs in float64 for the parameters of `deterministic_parameters` and the input of
# `reference_output_input` (batch 2), as `output_signature`.
REFERENCE_OUTPUTS = {
    'enso_8x16': (ENSO_8x16, (-8607.010204111994, 8607.010204111994, 19.87846305273635, 0.6039678891881621)),
    'sevir_48': (SEVIR_48, (25470.443403813748, 25488.67876731419, 7.428332069248578, 15.57204258093014)),
    'small_defaults': (SMALL_DEFAULTS, (327.2350826955418, 2188.852931608399, 4.187104070419465, 5.463745951678925)),
    'small_ignore_padding': (SMALL_IGNORE_PADDING,
                             (-1183.4911134008676, 1191.9014916512947, 36.33183633314262, 10.191068123761074)),
    'small_options': (SMALL_OPTIONS, (-1185.193041481334, 1185.193041481334, 14.06767233668639, 13.231452945744284)),
    'small_patterns': (SMALL_PATTERNS,
                       (-1165.1618207364631, 1166.7721230302868, -57.02814257764911, 11.344271689024275)),
}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def deterministic_parameters(model: nn.Module) -> None:
    """Fill every parameter with a fixed wave (phase from its registration index), scaled like an init.

    The reference outputs above were produced by filling our model this way and loading its
    parameters, renamed, into the reference model; they depend on the parameter order.
    """
    norms = {}
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            norms[id(module.weight)] = 'weight'
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            wave = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.618 + 1.3 * i).reshape(p.shape)
            if norms.get(id(p)) == 'weight':
                value = 1 + 0.1 * wave
            elif p.dim() >= 2 and not name.endswith(('embed.weight', 'bias_table', 'global_vectors')):
                value = wave * (2.0 / math.prod(p.shape[1:])) ** 0.5
            else:
                value = 0.1 * wave
            p.copy_(value.to(p.dtype))


def wave(shape, dtype=torch.float64, frequency=0.37, fn=torch.sin) -> torch.Tensor:
    return fn(torch.arange(math.prod(shape), dtype=torch.float64) * frequency).reshape(shape).to(dtype)


def output_signature(y: torch.Tensor) -> tuple[float, float, float, float]:
    """Sum, sum of |y|, dot product with a cosine wave, and sum of |y[0] − y[1]| (the input-dependent part)."""
    return (y.sum().item(), y.abs().sum().item(), (y * wave(y.shape, y.dtype, 0.11, torch.cos)).sum().item(),
            (y[0] - y[1]).abs().sum().item())


def reference_output_input(config) -> torch.Tensor:
    t, h, w, c = config['input_shape']
    return wave((2, t, c, h, w))


# ---------------------------------------------------------------------------------------------------------------
# (a) parameter counts equal the reference


@pytest.mark.parametrize('name', list(REFERENCE_COUNTS))
def test_parameter_count_equals_reference(name):
    config, total, stem, head = REFERENCE_COUNTS[name]
    model = Earthformer(**config)
    assert count(model) == total
    assert (count(model.stem), count(model.head), count(model.core)) == (stem, head, total - stem - head)


# ---------------------------------------------------------------------------------------------------------------
# outputs equal the reference's for the same parameters


@pytest.mark.parametrize('name', list(REFERENCE_OUTPUTS))
def test_output_equals_reference(name):
    config, expected = REFERENCE_OUTPUTS[name]
    model = Earthformer(**config).double().eval()
    deterministic_parameters(model)
    with torch.no_grad():
        y = model(reference_output_input(config))
    t_out, h, w, c = config['target_shape']
    assert y.shape == (2, t_out, c, h, w)
    for got, want in zip(output_signature(y), expected):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# (b) every paper task with a tiny configuration


def tiny_earthformer(spec, **overrides) -> Earthformer:
    """base_units 16, one block per level, SEVIR-style attention; the stem halves the frame encoder_depth times
    (2 channels until the last stage, so that full-resolution work stays small)."""
    n = spec.encoder_depth
    options = dict(
        input_shape=(spec.input_frames, spec.height, spec.width, spec.channels),
        target_shape=(spec.output_frames, spec.height, spec.width, spec.channels),
        base_units=16, enc_depth=[1, 1], dec_depth=[1, 1], num_heads=4, num_global_vectors=2,
        separate_global_qkv=True, use_global_self_attn=True, enc_attn_patterns='axial', dec_self_attn_patterns='axial',
        dec_cross_attn_patterns='cross_1x1', padding_type='zeros', pos_embed_type='t+h+w', z_init_method='zeros',
        ffn_activation='gelu', checkpoint_level=0, initial_downsample_type='stack_conv',
        initial_downsample_stack_conv_num_layers=n, initial_downsample_stack_conv_dim_list=[2] * (n - 1) + [16],
        initial_downsample_stack_conv_downscale_list=[2] * n, initial_downsample_stack_conv_num_conv_list=[1] * n)
    options.update(overrides)
    return Earthformer(**options)


@pytest.mark.parametrize('name', list(PAPER_TASKS))
def test_every_paper_task_returns_exactly_its_future_frames(name):
    spec = PAPER_TASKS[name]
    torch.manual_seed(0)
    model = tiny_earthformer(spec).eval()
    assert model.token_grid == (spec.input_frames,) + spec.token_grid
    with torch.no_grad():
        y = model(torch.randn(1, *spec.input_shape))
    assert y.shape == (1, *spec.output_shape)
    assert torch.isfinite(y).all()


def test_wrong_input_shape_names_expected_and_actual():
    model = tiny_earthformer(PAPER_TASKS['taxibj'])
    with pytest.raises(ValueError, match=r'\(B, 4, 2, 32, 32\), got \(1, 4, 2, 32, 16\)'):
        model(torch.zeros(1, 4, 2, 32, 16))


# ---------------------------------------------------------------------------------------------------------------
# (d) one core, several shapes


def test_one_core_serves_two_shapes():
    torch.manual_seed(0)
    first, second = PAPER_TASKS['taxibj'], TaskSpec('wide', 3, 6, 1, 16, 40, 1)
    core_max = (4, 14, 12, 24)  # max T, T', H', W' of the core, at least both tasks' (8×8 and 8×20 grids)
    a = tiny_earthformer(first, core_max_shape=core_max)
    b = tiny_earthformer(second, core_max_shape=core_max)
    b.core = a.core
    assert a.token_grid == (4, 8, 8) and b.token_grid == (3, 8, 20)
    xa, xb = torch.randn(2, *first.input_shape), torch.randn(2, *second.input_shape)
    ya, yb = a(xa), b(xb)
    assert ya.shape == (2, *first.output_shape) and yb.shape == (2, *second.output_shape)
    (ya.square().mean() + yb.square().mean()).backward()
    qkv = a.core.encoder.levels[0][0].attns[0].qkv.weight
    assert qkv is b.core.encoder.levels[0][0].attns[0].qkv.weight and qkv.grad.abs().sum() > 0
    with torch.no_grad():
        tokens = torch.randn(1, 4, 8, 8, 16)
        assert a.core(tokens, 14).shape == (1, 14, 8, 8, 16)
        with pytest.raises(ValueError, match=r"T' ≤ 14, got input \(1, 4, 8, 8, 16\) and out_frames=15"):
            a.core(tokens, 15)
        with pytest.raises(ValueError, match=r'T ≤ 4, H ≤ 12, W ≤ 24, 16\) inputs'):
            a.core(torch.randn(1, 5, 8, 8, 16), 4)


def test_core_built_for_maxima_computes_what_an_exact_core_computes():
    """Axial patterns: a larger core on a smaller input equals the exact core given the matching table slices
    (embedding rows from the start, relative-bias rows around the zero offset)."""
    spec = PAPER_TASKS['taxibj']
    torch.manual_seed(0)
    grown = tiny_earthformer(spec, core_max_shape=(6, 7, 12, 10)).eval()
    exact = tiny_earthformer(spec).eval()
    sizes_differ = 0
    with torch.no_grad():
        grown_parameters = dict(grown.named_parameters())
        for name, p in exact.named_parameters():
            q = grown_parameters[name]
            if p.shape != q.shape:
                sizes_differ += 1
                start = (q.shape[0] - p.shape[0]) // 2 if name.endswith('bias_table') else 0
                q = q[start:start + p.shape[0]]
            p.copy_(q)
        x = torch.randn(2, *spec.input_shape)
        torch.testing.assert_close(grown(x), exact(x), rtol=1e-5, atol=1e-6)
    assert sizes_differ == 6 + 3 * 3 + 2  # 6 embedding tables; axial tables of 2 encoder + 1 decoder blocks; 2 cross


def test_core_with_larger_maxima_only_grows_position_tables():
    config = dict(SEVIR_48, enc_attn_patterns=None, dec_self_attn_patterns=None, enc_cuboid_size=[(2, 2, 2)],
                  enc_cuboid_strategy=[('l', 'l', 'l')], enc_shift_size=[(0, 0, 0)], dec_self_cuboid_size=[(2, 2, 2)],
                  dec_self_cuboid_strategy=[('l', 'l', 'l')], dec_self_shift_size=[(0, 0, 0)])
    exact, grown = Earthformer(**config), Earthformer(**config, core_max_shape=(13 + 2, 12 + 1, 4 + 3, 4 + 5))
    d, heads = 128, 4
    # enc pos embed t+h+w grows by (2 + 3 + 5)·128, dec pos embed on the 2×2 → 4×5 top grid by (1 + 2 + 3)·256,
    # cross-attention tables (2·(T+T')−1 rows each, one per level) by 2·3 rows × heads each
    extra = 10 * d + 6 * 2 * d + 2 * 2 * 3 * heads
    assert count(grown.core) - count(exact.core) == extra
    assert count(grown.stem) == count(exact.stem) and count(grown.head) == count(exact.head)


def test_position_embedding_of_a_smaller_grid_is_the_corner_of_the_largest():
    for kind in ('t+h+w', 't+hw'):
        embed = CuboidPositionEmbedding(8, 5, 6, 7, kind)
        full = embed(torch.zeros(1, 5, 6, 7, 8))
        torch.testing.assert_close(embed(torch.zeros(1, 3, 4, 5, 8)), full[:, :3, :4, :5])
        with pytest.raises(ValueError, match=r'\(T, H, W, C\) ≤ \(5, 6, 7\)'):
            embed(torch.zeros(1, 5, 6, 8, 8))


# ---------------------------------------------------------------------------------------------------------------
# cuboid attention mechanics, checked against direct definitions


def test_cuboid_reorder_groups_local_blocks_and_dilated_strides():
    x = torch.arange(4 * 6 * 2).reshape(1, 4, 6, 2, 1)
    local = cuboid_reorder(x, (2, 3, 1), ('l', 'l', 'l'))[0, :, :, 0]
    assert local.shape == (2 * 2 * 2, 6)
    assert local[0].tolist() == [x[0, t, h, 0, 0].item() for t in (0, 1) for h in (0, 1, 2)]
    dilated = cuboid_reorder(x, (2, 3, 1), ('d', 'd', 'l'))[0, :, :, 0]
    assert dilated[0].tolist() == [x[0, t, h, 0, 0].item() for t in (0, 2) for h in (0, 2, 4)]
    for strategy in (('l', 'l', 'l'), ('d', 'l', 'd'), ('l', 'd', 'l')):
        back = cuboid_reorder_back(cuboid_reorder(x, (2, 3, 2), strategy), (2, 3, 2), strategy, (4, 6, 2))
        assert torch.equal(back, x)


def _interacts(p, q, sizes, cuboid, shift, strategy):
    """Direct definition: tokens p and q (coordinates) share a (shifted) cuboid and shifted-window region."""
    for axis in range(3):
        n, b, s = sizes[axis], cuboid[axis], (0 if strategy[axis] == 'd' else shift[axis])
        i, j = (p[axis] - s) % n, (q[axis] - s) % n
        block = (lambda k: k // b) if strategy[axis] == 'l' else (lambda k: k % (n // b))
        if block(i) != block(j):
            return False
        region = (lambda k: 0 if s == 0 else (2 if k >= n - s else (1 if k >= n - b else 0)))
        if region(i) != region(j):
            return False
    return True


def _dependencies(function, x: torch.Tensor) -> torch.Tensor:
    """``(outputs..., T, H, W)`` bool: which output rows change when one input token ``(t, h, w)`` is perturbed."""
    _, t, h, w, c = x.shape
    batch = x.repeat(t * h * w, 1, 1, 1, 1)
    index = torch.arange(t * h * w)
    batch.view(t * h * w, t * h * w, c)[index, index] += torch.linspace(-1, 1, c, dtype=x.dtype)  # survives a norm
    with torch.no_grad():
        changed = (function(batch) - function(x)).abs().sum(-1) > 1e-12
    return changed.reshape(t, h, w, *changed.shape[1:]).movedim((0, 1, 2), (-3, -2, -1))


@pytest.mark.parametrize('cuboid, shift, strategy', [
    ((2, 2, 2), (0, 0, 0), ('l', 'l', 'l')),
    ((2, 2, 2), (0, 0, 0), ('d', 'l', 'd')),
    ((2, 2, 3), (1, 1, 1), ('l', 'l', 'l')),
    ((1, 2, 3), (0, 1, 1), ('l', 'l', 'l')),
    ((2, 2, 2), (1, 1, 1), ('l', 'd', 'l')),
])
def test_self_attention_mixes_exactly_the_tokens_of_a_cuboid(cuboid, shift, strategy):
    torch.manual_seed(0)
    sizes = (4, 4, 6)
    layer = CuboidSelfAttention(8, 2, cuboid, shift, strategy, padding_type='zeros').double()
    depends = _dependencies(lambda v: layer(v)[0], torch.randn(1, *sizes, 8, dtype=torch.float64))
    coords = [(t, h, w) for t in range(sizes[0]) for h in range(sizes[1]) for w in range(sizes[2])]
    for p in coords:
        for q in coords:
            assert depends[p + q].item() == _interacts(p, q, sizes, cuboid, shift, strategy), (p, q)


def test_global_vectors_attend_to_every_real_token_and_to_no_padding():
    torch.manual_seed(0)
    padded = CuboidSelfAttention(8, 2, (2, 2, 2), padding_type='ignore', use_global_vector=True,
                                 use_relative_pos=False).double()
    whole = CuboidSelfAttention(8, 2, (3, 3, 2), padding_type='ignore', use_global_vector=True,
                                use_relative_pos=False).double()
    whole.load_state_dict(padded.state_dict())
    x = torch.randn(1, 3, 3, 2, 8, dtype=torch.float64)  # (2, 2, 2) cuboids pad T and H to 4
    g = torch.randn(1, 2, 8, dtype=torch.float64)
    assert _dependencies(lambda v: padded(v, g.expand(v.shape[0], -1, -1))[1], x).all()
    # the global update does not depend on how tokens are cut into cuboids once padding is ignored
    torch.testing.assert_close(padded(x, g)[1], whole(x, g)[1], rtol=1e-12, atol=1e-12)
    padded.padding_type = 'zeros'
    assert not torch.allclose(padded(x, g)[1], whole(x, g)[1])


def test_relative_bias_of_a_clipped_axial_cuboid_is_the_reference_prefix():
    full = self_relative_index((5, 1, 1), (5, 1, 1), torch.device('cpu'))
    assert torch.equal(self_relative_index((3, 1, 1), (5, 1, 1), torch.device('cpu')), full[:3, :3])
    square = self_relative_index((2, 2, 2), (3, 3, 3), torch.device('cpu'))  # table of 5 × 5 × 5 offsets

    def entry(dt, dh, dw):
        return ((dt + 2) * 5 + dh + 2) * 5 + dw + 2

    assert square.diagonal().unique().tolist() == [entry(0, 0, 0)]
    assert square[0, 7] == entry(-1, -1, -1) and square[7, 0] == entry(1, 1, 1) and square[1, 2] == entry(0, -1, 1)


def test_cross_attention_masks_left_padded_memory_and_right_padded_queries():
    mask = cross_attention_mask(3, 5, 2, 2, 2, (2, 2), (0, 0), ('l', 'l', 'l'), 'ignore', torch.device('cpu'))
    assert mask.shape == (2, 2 * 4, 3 * 4)  # queries 3 → 4 frames, memory 5 → 6 frames, in 2 temporal cuboids
    assert not mask[0, :, :4].any() and mask[0, :, 4:].all()  # memory frame 0 of cuboid 0 is padding
    assert mask[1, :4].all() and not mask[1, 4:].any()  # query frame 1 of cuboid 1 is padding
    torch.manual_seed(0)
    layer = CuboidCrossAttention(8, 2, n_temporal=2, cuboid_hw=(2, 2), use_global_vector=False).double()
    out = layer(torch.randn(1, 3, 2, 2, 8, dtype=torch.float64), torch.randn(1, 5, 2, 2, 8, dtype=torch.float64))
    assert out.shape == (1, 3, 2, 2, 8) and torch.isfinite(out).all()


def test_gradient_checkpointing_does_not_change_gradients():
    grads = []
    for level in (0, 2):
        torch.manual_seed(0)
        config = dict(SMALL_DEFAULTS, input_shape=(4, 8, 8, 1), target_shape=(4, 8, 8, 1), checkpoint_level=level)
        model = Earthformer(**config).double().train()
        model(wave((2, 4, 1, 8, 8))).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# options left out or invalid are named


@pytest.mark.parametrize('option, value, message', [
    ('norm_layer', 'rms_norm', "norm_layer must be 'layer_norm', got 'rms_norm'"),
    ('downsample_type', 'conv', "downsample_type must be 'patch_merge', got 'conv'"),
    ('upsample_type', 'deconv', "upsample_type must be 'upsample', got 'deconv'"),
    ('z_init_method', 'random', "z_init_method must be one of"),
    ('initial_downsample_type', 'identity', "initial_downsample_type must be 'conv' or 'stack_conv'"),
    ('padding_type', 'reflect', "padding_type must be one of"),
    ('pos_embed_type', 't+h', "pos_embed_type must be 't\\+h\\+w' or 't\\+hw', got 't\\+h'"),
    ('enc_attn_patterns', 'swin', "unknown self-attention pattern 'swin'"),
    ('dec_cross_attn_patterns', 'last_frame_dst', "unknown cross-attention pattern 'last_frame_dst'"),
    ('conv_init_mode', '1', "conv_init_mode must be one of \\('0',\\), got '1'"),
    ('ffn_activation', 'swish', "activation must be one of"),
    ('dec_depth', [1, 1, 1], r'enc_depth and dec_depth must have the same length, got \[1, 1\] and \[1, 1, 1\]'),
])
def test_unsupported_options_are_named(option, value, message):
    with pytest.raises(ValueError, match=message):
        Earthformer(**dict(SMALL_DEFAULTS, **{option: value}))


def test_reference_default_depths_are_rejected_as_in_the_reference():
    with pytest.raises(ValueError, match=r'enc_depth and dec_depth must have the same length'):
        EarthformerCore(4, 4, 8, 8, base_units=16)
