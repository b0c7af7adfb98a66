# Table 5: the backbone initialized from 'imagenet' instead of CLIP.
_base_ = ['./init_base.py']
model = dict(backbone='imagenet', pretrained=True)
