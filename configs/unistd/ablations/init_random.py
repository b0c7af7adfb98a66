# Table 5: the backbone initialized from 'random' instead of CLIP.
_base_ = ['./init_base.py']
model = dict(backbone='random', pretrained=False)
