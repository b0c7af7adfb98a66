"""Datasets: one file per on-disk format, the multi-task dataset and sampler, generated demo tasks."""
