# The three tasks of the initialization study (paper Table 5): BAIR, KTH, Cityscapes; CLIP weights.
_base_ = ['../multi10.py']
tasks = ['bair', 'kth', 'cityscapes']
