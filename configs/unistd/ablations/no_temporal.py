# Table 4, row 2: RA-MoE without the temporal module.
_base_ = ['../multi4.py']
model = dict(temporal=False)
