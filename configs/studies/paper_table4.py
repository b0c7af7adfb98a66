# The runs of the paper's Table 4 (docs/studies.md): UniSTD on BAIR, KTH, Cityscapes and TaxiBJ with RA-MoE and
# the temporal module, without the temporal module, and with neither (one plain LoRA, configs/unistd/ablations),
# one seed each as the paper reports. GPU jobs:
#     python tools/study.py -c configs/studies/paper_table4.py --plan
#     python tools/study.py -c configs/studies/paper_table4.py --data-root /data
# Its report is Table 4 (PSNR) with the published numbers beside ours.
#
# Expected cost of each run (`cost`, printed by --plan):
#   peak_gib  the largest per-task peak of one bf16 training step at batch 16 on one GPU, estimated on the CPU by
#             `python tools/benchmark.py memory -c <config> --bf16` (2026-12-07)
#   step_s    3 × the batch-16 bf16 inference step of the full model on each task measured on one H200
#             (docs/performance.md, "Inference step, every paper task", 2026-11-28, at R = 8 and before the
#             task-ends rework), averaged with the tasks' shares of training samples; forward + backward ≈ 3
#             forwards; a rough figure, and for the two ablations an upper bound (they have fewer adapters)
#   steps     90 epochs × Σ N_train / 16, N_train of paper Table 1
#   hours     ≈ steps × step_s on one GPU, validation and testing excluded
work_dir = 'work_dirs/studies/paper_table4'
runs = [
    dict(name='full', config='../unistd/multi4.py', cost=dict(peak_gib=9.7, steps=432090, step_s=0.084)),
    dict(name='no_temporal', config='../unistd/ablations/no_temporal.py',
         cost=dict(peak_gib=8.9, steps=432090, step_s=0.084)),
    dict(name='no_moe', config='../unistd/ablations/no_moe.py', cost=dict(peak_gib=8.0, steps=432090, step_s=0.084)),
]
report = dict(table='4', metric='psnr')
