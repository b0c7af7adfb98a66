"""Config loading and small helpers."""
