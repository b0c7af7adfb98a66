# Table 5: the backbone initialized from 'laion' instead of CLIP.
_base_ = ['./init_base.py']
model = dict(backbone='laion', pretrained=True)
