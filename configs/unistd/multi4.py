# UniSTD on the four tasks of the paper's ablation (Table 4): BAIR, KTH, Cityscapes, TaxiBJ.
_base_ = ['./multi10.py']
tasks = ['bair', 'kth', 'cityscapes', 'taxibj']
