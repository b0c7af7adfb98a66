# The demo with TAU in place of UniSTD: same generated tasks, data, schedule and metrics.
_base_ = ['../unistd/demo.py']
method = dict(type='tau', alpha=0.1, tau=0.1)
model = dict(_delete_=True, type='SimVP', model_type='tau', hid_S=16, hid_T=64, N_S=2, N_T=2)
