# The ten paper tasks on a tiny, untrained backbone (depth 2, width 192): for tests and smoke runs.
_base_ = ['./multi10.py']
model = dict(
    backbone='vit_tiny_patch16_224',
    pretrained=False,
    backbone_kwargs=dict(depth=2),
    hidden_channels=8,
)
trainer = dict(precision='32', accelerator='cpu', devices=1)
