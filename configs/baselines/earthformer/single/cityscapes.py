# earthformer trained on cityscapes alone (paper Tables 3 and 6).
_base_ = ['../multi10.py']
tasks = ['cityscapes']
