# earthformer jointly on the paper's ten tasks (paper Table 2), same data, schedule and metrics as UniSTD.
_base_ = [
    '../../_base_/models/earthformer.py',
    '../../_base_/tasks/paper10.py',
    '../../_base_/data/paper10.py',
    '../../_base_/schedules/unistd_90e.py',
]
