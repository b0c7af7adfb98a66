# UniSTD in OpenSTL (python -m openstl_unistd.openstl_train -m unistd ...): the paper's settings.
method = 'unistd'
epoch = 90
lr = 7e-4
weight_decay = 1e-5
warmup_epoch = 5
warmup_lr = 1e-8
min_lr = 1e-6
clip_grad = 1.0
# model (openstl_unistd.models.UniSTD)
backbone = 'clip'
pretrained = True           # Hugging Face cache; or the path of a weights file
backbone_kwargs = dict()
hidden_channels = 64
inner_channels = 'frames'   # Table 8: each block's stride-1 convolution has T' channels
skip = True                 # SimVP/TAU skip path in the task encoder/decoder
decode = 'rollout'          # T → T rolled out to T' (OpenSTL's SimVP method; paper Table 9)
# max_rank 32: what paper Tables 7 and 9 point to (METHOD.md says 8; docs/method.md)
lora = dict(qkv_experts=6, proj_experts=2, max_rank=32, init_rank=4.5, alpha=1.0, gamma=1.0, top_k=None,
            learn_rank=True)
temporal = dict(hidden_ratio=6, experts=2)
# rank search
search_epochs = 10
rank_lr = None                 # 0.01 for 'marginal_gain', the paper's 0.05 for 'paper'
rank_momentum = 0.9
rank_budget = None
rank_budget_beta = 1.0         # β of rank_formulation='paper' only
rank_formulation = 'marginal_gain'   # or 'paper' (Eq. 9-10 literally); docs/method.md "Rank search"
