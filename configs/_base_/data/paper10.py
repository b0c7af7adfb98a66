# The ten paper datasets in the layouts OpenSTL, PredBench and Earthformer use (docs/datasets.md).
# Each entry holds the options of that task's loader; change `format` to read another layout.
data = dict(
    data_root='data',
    batch_size=16,          # per device; the paper trains with 16
    val_batch_size=16,
    num_workers=4,
    sampling='proportional',  # or 'uniform', or a temperature such as 2.0
    steps_per_epoch=None,     # default: training samples of all tasks / global batch
    datasets=dict(
        taxibj=dict(format='openstl'),
        mmnist=dict(),
        kth=dict(),
        kitti=dict(),
        human=dict(step=5),
        bair=dict(format='tfrecord'),
        cityscapes=dict(stride=10),
        traffic4cast=dict(stride=10),
        sevir=dict(format='earthformer'),
        enso=dict(),
    ),
)
