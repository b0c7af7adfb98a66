# OpenSTL's own TAU, one model per task, the widths of multitask_tau.py
method = 'TAU'
model_type = 'tau'
hid_S = 16
hid_T = 64
N_S = 2
N_T = 2
alpha = 0.1
lr = 2e-3
datasets = dict(demo_digits=dict(num_samples=800), demo_advection=dict(num_samples=800),
                demo_traffic=dict(num_samples=800))   # 800 sequences per split and task
