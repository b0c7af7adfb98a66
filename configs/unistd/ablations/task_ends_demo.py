# The task-ends study (docs/method.md): the demo model on the three demo tasks plus demo_wave, a signed
# field predicted 4 → 12 frames, so that direct decoding and the rollout differ. Variants:
#   --cfg-options model.skip=False          the skip path removed
#   --cfg-options model.decode=direct       one pass to T' frames instead of a rolled-out T → T model
_base_ = ['../demo.py']
tasks = ['demo_digits', 'demo_advection', 'demo_traffic', 'demo_wave']
data = dict(datasets=dict(demo_wave=dict(num_samples=None)))
