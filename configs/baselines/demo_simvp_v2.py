# The demo with SimVP v2 (gSTA translator) in place of UniSTD: same generated tasks, data, schedule and
# metrics; the widths of TAU's demo (configs/baselines/demo_tau.py), trained by the plain multi-task method.
_base_ = ['../unistd/demo.py']
method = dict(type='multitask')
model = dict(_delete_=True, type='SimVP', model_type='gsta', hid_S=16, hid_T=64, N_S=2, N_T=2)
