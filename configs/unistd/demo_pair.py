# The demo model on two of its three generated tasks, with a short schedule (2 epochs of 100 batches,
# about 100 per task): the starting point of configs/unistd/extend_demo.py, which adds demo_traffic to it
# without retraining (docs/training.md, "Adding a task").
_base_ = ['./demo.py']
tasks = ['demo_digits', 'demo_advection']
data = dict(steps_per_epoch=100)
trainer = dict(max_epochs=2)
