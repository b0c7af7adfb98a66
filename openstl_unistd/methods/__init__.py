"""LightningModules holding the training logic: the shared multi-task method and UniSTD's."""
