"""Names of the files a run leaves for the sweep report (read and written by :mod:`.records`).

Kept free of heavy imports: Hydra loads the sweep report callback (which needs these names) for every entry
point, ``generate.py`` included, which should not pay for importing torch.
"""

METRICS_FILE = "metrics.json"
"""Written when a run ends: its presence means a sweep job finished (a rerun skips it)."""
PREDICTIONS_FILE = "test_predictions.jsonl"
"""One test comment per line, next to ``metrics.json``: id, text, gold and predicted label names, scores."""
FLOORS_FILE = "floors.json"
"""Written into a run folder by :func:`.floors.write_floors` (reference floors); the report reads it."""
