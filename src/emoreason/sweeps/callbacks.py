"""Hydra callback that rewrites the sweep report after every job of a multirun.

Why after every job rather than at the end: Hydra's ``on_multirun_end`` never runs when a job failed (the
basic sweeper re-raises the failure first) or when the sweep is interrupted, which is exactly when a
current report matters most. Rewriting it per job costs a second against minutes of training.
Configured in ``conf/hydra/default.yaml``; turn it off with ``~hydra.callbacks.sweep_report``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from emoreason.evaluation.files import METRICS_FILE
from emoreason.sweeps.files import FAILURE_FILE

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Write report.{md,json,csv} and fig3.png into the sweep folder once any job has a result."""
        del job_return, kwargs  # the report reads every job's files, this one's included
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if not any(sweep_dir.rglob(METRICS_FILE)) and not any(sweep_dir.rglob(FAILURE_FILE)):
            return  # not a training sweep (e.g. generate.py -m), or nothing to show yet
        from emoreason.sweeps.summary import write_report  # matplotlib only when there is a report to draw

        paths = write_report(sweep_dir, keep_earlier=True)  # what report.py computed stays
        log.info("sweep report: %s, %s", paths["markdown"], paths["chart"])
