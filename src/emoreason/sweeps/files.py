"""Names of the files a sweep job leaves besides its results (those: :mod:`emoreason.evaluation.files`).

Kept free of heavy imports: Hydra loads the report callback (which needs these names) for every entry point,
``generate.py`` included, which should not pay for importing torch.
"""

FAILURE_FILE = "failure.json"
"""Written by :func:`emoreason.sweeps.jobs.run_job` when a job raised."""
CONFIG_FILE = "config.yaml"
"""The resolved, redacted config ``train`` saves before training."""
