"""The run engine: configs to objects (the composition root), training and test runs, work dirs, the
command-line helpers and the model report. Tools call it; models, methods and datasets never see a config."""
