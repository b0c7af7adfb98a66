# The ten tasks of the paper (Table 1), shapes in openstl_unistd/tasks.py.
tasks = ['taxibj', 'traffic4cast', 'mmnist', 'bair', 'human', 'kth', 'cityscapes', 'kitti', 'sevir', 'enso']
