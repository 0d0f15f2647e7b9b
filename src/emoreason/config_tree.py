"""The resolved config, printed as a tree when a job starts (rank 0 only, secrets redacted).

Why: a run's log should say what ran before it says how it went, in the form lightning-hydra-template users
know: one branch per top-level group. It is a Hydra callback (``conf/hydra/default.yaml``), so every entry
point that uses that Hydra config prints it, in single runs and in each job of a sweep, through ``logging``
(stdout and ``<job>.log``). The ``hydra`` node is left out: ``.hydra/`` in the run folder holds it.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.tree import Tree

from emoreason.config import redact

log = logging.getLogger(__name__)


def _is_rank_zero() -> bool:
    """Lightning and torchrun set RANK / LOCAL_RANK in the processes they start; rank 0 or unset prints."""
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` without its ``hydra`` node, resolved where it can be (left as written where not), redacted."""
    job = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    try:
        container = OmegaConf.to_container(job, resolve=True)
    except OmegaConfBaseException:  # e.g. an env variable not set: the job itself will name it
        container = OmegaConf.to_container(job, resolve=False)
    return redact(container)


def render_tree(config: dict[str, Any], width: int = 110) -> str:
    """One branch per top-level key; groups as indented YAML, scalars as ``key: value``."""
    tree = Tree("config", guide_style="dim")
    for key, value in config.items():
        if isinstance(value, dict) and value:
            branch = tree.add(str(key))
            for line in OmegaConf.to_yaml(value).rstrip().splitlines():
                branch.add(line, highlight=False)
        else:
            tree.add(f"{key}: {value}", highlight=False)
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(tree)
    return buffer.getvalue().rstrip()


class PrintConfigTree(Callback):
    """Hydra callback: log the job's resolved, redacted config as a tree before the task runs."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _is_rank_zero():
            log.info("config:\n%s", render_tree(plain_config(config)))
