# UniSTD as configs/unistd/demo.py builds it (OpenSTL's flat config): random frozen ViT-Tiny, 4 blocks, C' = 16, R = 8
method = 'unistd'
backbone = 'vit_tiny_patch16_224'
pretrained = False
backbone_kwargs = dict(depth=4)
hidden_channels = 16
inner_channels = 16
lora = dict(max_rank=8)
rank_search = dict(epochs=1)
lr = 2e-3
datasets = dict(demo_digits=dict(num_samples=800), demo_advection=dict(num_samples=800),
                demo_traffic=dict(num_samples=800))   # 800 sequences per split and task
