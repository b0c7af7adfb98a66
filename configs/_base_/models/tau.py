# TAU (temporal attention unit) with its differential divergence term, trained jointly like UniSTD;
# same widths as SimVP v1.
_base_ = ['./simvp_v1.py']
method = dict(type='tau', alpha=0.1, tau=0.1)
model = dict(model_type='tau')
