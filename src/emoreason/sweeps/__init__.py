"""Hydra multirun sweeps: resumable, crash-recording jobs and the sweep report (table, JSON/CSV, Fig. 3).

A sweep folder is ``multirun/<date>/<time>/`` with one folder per job; each job folder holds Hydra's
``.hydra/`` record and, from ``train.py``, ``config.yaml`` and either ``metrics.json`` (finished) or
``failure.json`` (crashed). Everything here reads or writes only those files.
"""
