"""Metrics with validation-tuned thresholds, metrics.json, and reports."""
