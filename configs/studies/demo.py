# UniSTD, TAU and SimVP v2 on the three generated demo tasks, two seeds each, on the CPU
# (`python tools/study.py -c configs/studies/demo.py`; docs/studies.md). Every run has the demo's data,
# widths and learning rate (configs/unistd/demo.py, configs/baselines/demo_tau.py, demo_simvp_v2.py) and
# 200 training steps (2 epochs of 100; `make demo` trains 1000): TAU and SimVP v2 take about twice UniSTD's
# time per run on the CPU (their 21×21 large-kernel convolutions), and the six runs must fit in 30 minutes on
# two cores (14 min measured, docs/studies.md). Each run also scores the two reference predictors, copying
# the last input frame and the per-pixel training mean (evaluation.copy_last, evaluation.train_mean, set by
# the demo config).
work_dir = 'work_dirs/studies/demo'
cfg_options = {'trainer.max_epochs': 2, 'data.steps_per_epoch': 100}
runs = [
    dict(name='unistd', config='../unistd/demo.py', seeds=[0, 1]),
    dict(name='tau', config='../baselines/demo_tau.py', seeds=[0, 1]),
    dict(name='simvp_v2', config='../baselines/demo_simvp_v2.py', seeds=[0, 1]),
]
report = dict(table='runs', metric='mse')
