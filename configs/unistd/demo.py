# A small UniSTD on the generated demo tasks (no download): runs on a CPU in minutes.
_base_ = ['../_base_/models/unistd_vit_b.py']
tasks = ['demo_digits', 'demo_advection', 'demo_traffic']
model = dict(
    backbone='vit_tiny_patch16_224',
    pretrained=False,
    backbone_kwargs=dict(depth=2),
    hidden_channels=16,
)
