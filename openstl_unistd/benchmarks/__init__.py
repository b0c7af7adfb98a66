"""Measurements behind tools/benchmark.py: figures, not pass/fail tests."""
