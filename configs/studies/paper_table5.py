# The runs of the paper's Table 5 (docs/studies.md): UniSTD with its ViT-B/16 initialized from CLIP (the paper's
# choice), from LAION's CLIP and randomly, on BAIR, KTH and Cityscapes (configs/unistd/ablations/init_*.py; the
# paper does not say which tasks its Table 5 models trained on, and its CLIP row equals Table 4's four-task model
# on these three tasks), one seed each. configs/unistd/ablations/init_imagenet.py is a fourth scheme the paper does
# not report. GPU jobs; the pretrained schemes need their weights files (docs/method.md, "Backbone and pretrained
# weights"):
#     python tools/study.py -c configs/studies/paper_table5.py --plan
#     python tools/study.py -c configs/studies/paper_table5.py --data-root /data
# Its report is Table 5 with the published numbers beside ours.
#
# Expected cost of each run (`cost`, printed by --plan): as in configs/studies/paper_table4.py, for these three
# tasks: peak_gib from `python tools/benchmark.py memory -c configs/unistd/ablations/init_base.py --bf16`
# (2026-12-07; the same architecture for every scheme), step_s from the H200 inference steps of
# docs/performance.md (3 × batch-16 forward, weighted by training samples; rough), steps = 90 epochs × Σ N_train / 16.
work_dir = 'work_dirs/studies/paper_table5'
runs = [
    dict(name='clip', config='../unistd/ablations/init_base.py', cost=dict(peak_gib=9.6, steps=316980, step_s=0.089)),
    dict(name='laion', config='../unistd/ablations/init_laion.py', cost=dict(peak_gib=9.6, steps=316980, step_s=0.089)),
    dict(name='random', config='../unistd/ablations/init_random.py',
         cost=dict(peak_gib=9.6, steps=316980, step_s=0.089)),
]
report = dict(table='5', metric='psnr')
