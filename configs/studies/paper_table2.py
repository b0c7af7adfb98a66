# The runs of the paper's Table 2 (docs/studies.md): one UniSTD on the ten tasks and the baselines on the task
# sets Table 2 gives them (the tasks each row has numbers for), one seed each as the paper reports. GPU jobs:
#     python tools/study.py -c configs/studies/paper_table2.py --plan                       # runs, status, cost
#     python tools/study.py -c configs/studies/paper_table2.py --data-root /data --only 'tau-*'
# Its report is Table 2 with the published numbers beside ours (tools/report.py --table 2).
#
# Expected cost of each run (`cost`, printed by --plan):
#   peak_gib  the largest per-task peak of one bf16 training step at batch 16 on one GPU, estimated on the CPU by
#             `python tools/benchmark.py memory -c <config> --bf16 [--cfg-options tasks=[...]]` with the run's own
#             task set (2026-12-07, CPU estimate; UniSTD's SEVIR checkpointed as configured, docs/performance.md)
#   step_s    3 × the batch-16 bf16 inference step of each of the run's tasks measured on one H200
#             (docs/performance.md, "Inference step, every paper task", 2026-11-28, at R = 8 and before the
#             task-ends rework), averaged with the tasks' shares of training samples (sampling='proportional');
#             forward + backward ≈ 3 forwards. No batch-16 training step was measured for every task: a rough figure
#   steps     90 epochs × Σ N_train / 16, N_train of paper Table 1 (our loaders' windows may count differently)
#   hours     ≈ steps × step_s on one GPU, validation and testing excluded
# SEVIR's batch-16 step does not fit one GPU for SimVP v2 (151 GiB), nor a 40 GB one for Earthformer (53 GiB): give
# those runs cfg_options {'data.batch_size': 4, 'trainer.devices': 4} (the same global batch of 16 on 4 GPUs).
work_dir = 'work_dirs/studies/paper_table2'
runs = [
    dict(name='unistd_10tasks', config='../unistd/multi10.py',
         cost=dict(peak_gib=22.9, steps=1700910, step_s=0.154)),
    dict(name='simvp_v1_t4c_kth_kitti', config='../baselines/simvp_v1/multi3.py',
         cost=dict(peak_gib=17.5, steps=301230, step_s=0.119)),
    dict(name='simvp_v2_taxibj_bair_human', config='../baselines/simvp_v2/multi10.py',
         cfg_options={'tasks': ['taxibj', 'bair', 'human']}, cost=dict(peak_gib=33.8, steps=747090, step_s=0.174)),
    dict(name='simvp_v2_t4c_kth_kitti', config='../baselines/simvp_v2/multi3.py',
         cost=dict(peak_gib=18.2, steps=301230, step_s=0.087)),
    dict(name='simvp_v2_5tasks', config='../baselines/simvp_v2/multi10.py',
         cfg_options={'tasks': ['taxibj', 'bair', 'human', 'cityscapes', 'sevir']},
         cost=dict(peak_gib=151.1, steps=1049040, step_s=0.356,
                   note='SEVIR: more than one GPU holds at batch 16')),
    dict(name='tau_taxibj_bair_human', config='../baselines/tau/multi10.py',
         cfg_options={'tasks': ['taxibj', 'bair', 'human']}, cost=dict(peak_gib=33.3, steps=747090, step_s=0.178)),
    dict(name='tau_taxibj_human_cityscapes', config='../baselines/tau/multi10.py',
         cfg_options={'tasks': ['taxibj', 'human', 'cityscapes']}, cost=dict(peak_gib=33.3, steps=578250, step_s=0.224)),
    dict(name='tau_bair_human_cityscapes', config='../baselines/tau/multi10.py',
         cfg_options={'tasks': ['bair', 'human', 'cityscapes']}, cost=dict(peak_gib=33.3, steps=682200, step_s=0.193)),
    dict(name='tau_t4c_kth_kitti', config='../baselines/tau/multi3.py',
         cost=dict(peak_gib=18.0, steps=301230, step_s=0.087)),
    dict(name='earthformer_taxibj_human_cityscapes', config='../baselines/earthformer/multi10.py',
         cfg_options={'tasks': ['taxibj', 'human', 'cityscapes']}, cost=dict(peak_gib=7.9, steps=578250, step_s=0.067)),
    dict(name='earthformer_taxibj_bair_cityscapes', config='../baselines/earthformer/multi10.py',
         cfg_options={'tasks': ['taxibj', 'bair', 'cityscapes']}, cost=dict(peak_gib=3.9, steps=384390, step_s=0.05)),
    dict(name='earthformer_t4c_kth_kitti', config='../baselines/earthformer/multi3.py',
         cost=dict(peak_gib=13.1, steps=301230, step_s=0.061)),
    dict(name='earthformer_5tasks', config='../baselines/earthformer/multi10.py',
         cfg_options={'tasks': ['taxibj', 'bair', 'human', 'cityscapes', 'sevir']},
         cost=dict(peak_gib=53.3, steps=1049040, step_s=0.149, note='SEVIR: more than a 40 GB GPU holds at batch 16')),
]
report = dict(table='2', metric='psnr')
