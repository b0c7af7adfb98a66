# Training schedule of the paper's supplement (METHOD.md §5): 90 epochs, AdamW 7e-4 with 5 warm-up
# epochs from 1e-8 and a cosine decay; ranks searched for the first 10 epochs with SGD-Nesterov 0.05
# under the budget term β·|C − Σr| (C: the initial total rank), then rounded and frozen.
seed = 42
optim = dict(lr=7e-4, weight_decay=1e-5, warmup_epochs=5, warmup_lr=1e-8, min_lr=1e-6, grad_clip=1.0)
rank_search = dict(epochs=10, lr=0.05, momentum=0.9, budget=None, beta=1.0)
trainer = dict(
    max_epochs=90,
    precision='bf16-mixed',
    accelerator='auto',
    devices='auto',
    num_nodes=1,
    log_every_n_steps=50,
    check_val_every_n_epoch=1,
    checkpoint_every_n_steps=None,  # set to also save last.ckpt every N steps within an epoch
)
evaluation = dict(ssim_data_range=1.0, save_preds=0, figures=True, copy_last_baseline=False)
