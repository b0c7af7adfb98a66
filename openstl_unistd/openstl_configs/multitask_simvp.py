# simvp trained jointly (per-task ends, one shared translator) in OpenSTL; OpenSTL's Moving MNIST widths.
method = 'multitask_simvp'
epoch = 90
lr = 7e-4
weight_decay = 1e-5
warmup_epoch = 5
warmup_lr = 1e-8
min_lr = 1e-6
clip_grad = 1.0
model_type = 'gsta'   # multitask_simvp: 'incepu' (SimVP v1) or 'gsta' (SimVP v2)
hid_S = 64
hid_T = 512
N_S = 4
N_T = 8
decode = 'rollout'    # T → T rolled out to T' (OpenSTL's SimVP method)
