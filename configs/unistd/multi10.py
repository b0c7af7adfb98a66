# One UniSTD (ViT-B/16, CLIP) jointly on the paper's ten tasks (paper Table 2).
_base_ = [
    '../_base_/models/unistd_vit_b.py',
    '../_base_/tasks/paper10.py',
    '../_base_/data/paper10.py',
    '../_base_/schedules/unistd_90e.py',
]
