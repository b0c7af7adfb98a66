"""Forecast metrics with OpenSTL's and Earthformer's definitions, streamed over a test set."""
from .forecast_metrics import ForecastMetrics

__all__ = ['ForecastMetrics']
