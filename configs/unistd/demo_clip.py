# The demo from CLIP weights instead of a random backbone: the paper's ViT-B/16 (12 blocks, frozen)
# on the same generated tasks, data, schedule and metrics. Give the weights file on the command line:
#   python tools/train.py -c configs/unistd/demo_clip.py --cfg-options model.pretrained=<ViT-B-16 file>
# (OpenAI's ViT-B-16.pt or open_clip's; docs/method.md "Backbone and pretrained weights"). pretrained=True
# reads the Hugging Face cache. About 20× the demo's compute per step: a GPU is the place for it.
_base_ = ['demo.py']
model = dict(backbone='clip', pretrained=True, backbone_kwargs=dict(_delete_=True), train_backbone=False)
