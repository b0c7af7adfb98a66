# SimVP v2 (gSTA translator), trained jointly like UniSTD; same widths as SimVP v1.
_base_ = ['./simvp_v1.py']
model = dict(model_type='gsta')
