"""Metrics, optimizers and schedules."""
