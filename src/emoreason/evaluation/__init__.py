"""Scoring with validation-tuned thresholds, the run records (metrics.json, predictions), reports, floors."""
