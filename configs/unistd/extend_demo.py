# Adding a task to a trained model: the two-task demo model (configs/unistd/demo_pair.py) learns demo_traffic.
# Every weight comes from init_from; only the new task's encoder and decoder train, on its data alone
# (2 epochs of 50 batches), so demo_digits and demo_advection give bit-identical outputs afterwards
# (docs/training.md, "Adding a task"):
#   python tools/train.py -c configs/unistd/demo_pair.py       # → work_dirs/demo_pair/checkpoints/last.ckpt
#   python tools/train.py -c configs/unistd/extend_demo.py
_base_ = ['./demo.py']
tasks = ['demo_digits', 'demo_advection', 'demo_traffic']
init_from = 'work_dirs/demo_pair/checkpoints/last.ckpt'  # a checkpoint after the rank search, or an export
train_only = ['encoders.demo_traffic', 'decoders.demo_traffic']
data = dict(steps_per_epoch=50)
trainer = dict(max_epochs=2)
