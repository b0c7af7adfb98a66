# TAU in place of UniSTD in the task-ends study (configs/unistd/ablations/task_ends_demo.py): same tasks,
# data, schedule and metrics; TAU's demo widths (configs/baselines/demo_tau.py).
_base_ = ['../unistd/ablations/task_ends_demo.py']
method = dict(type='tau', alpha=0.1, tau=0.1)
model = dict(_delete_=True, type='SimVP', model_type='tau', hid_S=16, hid_T=64, N_S=2, N_T=2, decode='rollout')
