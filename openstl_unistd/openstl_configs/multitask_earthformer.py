# Earthformer trained jointly (per-task stems/heads, one shared core) in OpenSTL; SEVIR config's core.
method = 'multitask_earthformer'
epoch = 90
lr = 7e-4
weight_decay = 1e-5
warmup_epoch = 5
warmup_lr = 1e-8
min_lr = 1e-6
clip_grad = 1.0
earthformer = dict(
    base_units=128, padding_type='zeros', num_heads=4, attn_drop=0.1, proj_drop=0.1, ffn_drop=0.1,
    enc_depth=[1, 1], enc_attn_patterns=['axial', 'axial'], dec_depth=[1, 1],
    dec_self_attn_patterns=['axial', 'axial'], dec_cross_attn_patterns=['cross_1x1', 'cross_1x1'],
    num_global_vectors=8, use_dec_self_global=False, use_dec_cross_global=False, use_global_vector_ffn=False,
    use_global_self_attn=True, separate_global_qkv=True, z_init_method='zeros', ffn_activation='gelu',
    pos_embed_type='t+h+w', checkpoint_level=0)
