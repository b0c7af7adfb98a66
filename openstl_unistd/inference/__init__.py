"""Trained models as files and forecasters: model cards, checkpoints and ``.safetensors`` exports, the
:class:`~.predictor.Predictor` (physical units, any horizon), forecast files, and extending a trained model
with new tasks. Nothing here reads a config."""
