# SimVP v2 (gSTA) with per-task ends and one shared translator, the widths of multitask_tau.py
method = 'multitask_simvp'
model_type = 'gsta'
hid_S = 16
hid_T = 64
N_S = 2
N_T = 2
lr = 2e-3
datasets = dict(demo_digits=dict(num_samples=800), demo_advection=dict(num_samples=800),
                demo_traffic=dict(num_samples=800))   # 800 sequences per split and task
