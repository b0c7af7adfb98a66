"""A loader's model-range values back in its files' units: ``values · std + mean`` from the loader's
``mean`` and ``std`` (the attributes OpenSTL's test loop reads), the inverse every loader test checks
its scaling against."""


def denormalize(dataset, values):
    """Model-range ``values`` (an array or tensor ``(..., C, H, W)``) of ``dataset`` → the file's values."""
    return values * dataset.std + dataset.mean
