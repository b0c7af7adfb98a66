"""Metrics, losses, schedules and figures: tensor-level tools that methods and tools share."""
