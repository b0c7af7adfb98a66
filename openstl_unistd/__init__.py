"""openstl-unistd: UniSTD (CVPR 2025) and a multi-task data layer for the OpenSTL benchmark.

Importing the package is cheap: submodules are imported where they are used.
"""
__version__ = '0.1.0'


def register() -> None:
    """Add UniSTD, the multi-task baselines and our datasets to an installed OpenSTL (idempotent).

    Raises ``ImportError`` with install instructions when OpenSTL is not installed.
    """
    from .openstl_plugin import register as register_with_openstl

    register_with_openstl()


def load_predictor(path, config=None, **kwargs):
    """A trained model (checkpoint or ``.safetensors`` export) with its model card, ready to forecast in physical
    units: ``load_predictor(path).predict(x, task, horizon)``; see
    :func:`openstl_unistd.engine.loading.load_predictor`."""
    from .engine.loading import load_predictor as _load_predictor

    return _load_predictor(path, config, **kwargs)


def load_model(path, config=None, **kwargs):
    """The trained ``nn.Module`` of a checkpoint or export, ``model(x, task)`` in the model range; see
    :func:`openstl_unistd.engine.loading.load_model` (and :func:`load_predictor` to forecast in physical units)."""
    from .engine.loading import load_model as _load_model

    return _load_model(path, config, **kwargs)
