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
# max_rank 32: what paper Tables 7 and 9 point to (not our first 8; docs/method.md#max-rank-of-the-paper-configs)
# lora and temporal: PAPER_LORA and PAPER_TEMPORAL of openstl_unistd/models/unistd.py (tests/test_configs.py checks)
lora = dict(qkv_experts=6, proj_experts=2, max_rank=32, init_rank=4.5, alpha=1.0, gamma=1.0, top_k=None,
            learn_rank=True)
temporal = dict(hidden_ratio=6, experts=2)
# rank search, as in our configs (openstl_unistd/methods/options.py RankSearchOptions): lr=None is 0.01 for
# 'marginal_gain', the paper's 0.05 for 'paper' (Eq. 9-10 literally, β·|C − Σr| in the loss); docs/method.md
rank_search = dict(epochs=10, lr=None, momentum=0.9, budget=None, beta=1.0, formulation='marginal_gain')
