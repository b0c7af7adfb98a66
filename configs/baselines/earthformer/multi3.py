# earthformer jointly on the three-task set of paper Table 7 (KITTI, Traffic4Cast, KTH).
_base_ = ['./multi10.py']
tasks = ['kitti', 'traffic4cast', 'kth']
