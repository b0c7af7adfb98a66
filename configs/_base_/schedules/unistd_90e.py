# Training schedule of the paper's supplement (docs/method.md#training-schedule): 90 epochs, AdamW 7e-4 with 5 warm-up
# epochs from 1e-8 and a cosine decay; ranks searched for the first 10 epochs with SGD-Nesterov and
# kept on the budget Σr = C (C: the initial total rank), then rounded (total ≤ C) and frozen.
# formulation='marginal_gain' moves rank to the experts where one more component lowers the loss most
# (docs/method.md "Rank search"); formulation='paper' is Eq. 9-10 literally (β·|C − Σr| in the loss).
# lr=None: 0.01 rank units per step for 'marginal_gain', the paper's 0.05 for 'paper'.
seed = 42
optim = dict(lr=7e-4, weight_decay=1e-5, warmup_epochs=5, warmup_lr=1e-8, min_lr=1e-6, grad_clip=1.0)
rank_search = dict(epochs=10, lr=None, momentum=0.9, budget=None, beta=1.0, formulation='marginal_gain')
trainer = dict(
    max_epochs=90,
    precision='bf16-mixed',
    accelerator='auto',
    devices='auto',
    num_nodes=1,
    log_every_n_steps=50,
    check_val_every_n_epoch=1,
    checkpoint_every_n_steps=None,  # set to also save last.ckpt every N steps within an epoch
    compile=None,  # torch.compile the ViT blocks: None = on for CUDA GPUs, off on the CPU (docs/performance.md)
)
evaluation = dict(ssim_data_range=1.0, save_preds=0, figures=True, copy_last=False)
