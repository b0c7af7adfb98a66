# earthformer jointly on the seven-task set of paper Table 7.
_base_ = ['./multi10.py']
tasks = ['bair', 'taxibj', 'human', 'cityscapes', 'kth', 'traffic4cast', 'kitti']
