"""Names of the files in a job folder: the contract between a training job and the sweep report.

Kept free of heavy imports: Hydra loads the report callback (which needs these names) for every entry point,
``generate.py`` included, which should not pay for importing torch.
"""

METRICS_FILE = "metrics.json"
"""Written by ``emoreason.train.train`` when a run ends: its presence means the job finished."""
FAILURE_FILE = "failure.json"
"""Written by :func:`emoreason.sweeps.jobs.run_job` when a job raised."""
CONFIG_FILE = "config.yaml"
"""The resolved, redacted config ``train`` saves before training."""
