# Table 4, row 3: one plain shared LoRA (rank 8 = max_rank, no experts, no rank search) and no temporal module.
_base_ = ['../multi4.py']
model = dict(lora=dict(qkv_experts=1, proj_experts=1, max_rank=8, init_rank=8, learn_rank=False), temporal=False)
