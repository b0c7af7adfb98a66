# SimVP v1 (Inception-UNet translator), trained jointly like UniSTD: per-task encoders/decoders around one shared
# translator (openstl_unistd/models/multitask_simvp.py). Widths of OpenSTL's Moving MNIST configs.
method = dict(type='multitask')
model = dict(
    type='SimVP',
    model_type='incepu',
    hid_S=64,
    hid_T=512,
    N_S=4,
    N_T=8,
    frames=None,          # translator length: the longest input among the tasks
    mlp_ratio=8.0,
    drop=0.0,
    drop_path=0.0,
    spatio_kernel_enc=3,
    spatio_kernel_dec=3,
    spatial_depths=None,  # per-task N_S overrides, e.g. dict(sevir=6)
    decode='rollout',     # each task T → T, rolled out to T' (OpenSTL's SimVP method); or 'direct'
)
