"""Train a KOTE emotion classifier: ``python train.py [group=option ...] [key=value ...]``.

Defaults: the embedded tiny ELECTRA on KOTE (set KOTE_DIR). See README.md for every config group.
Sweeps: ``python train.py -m +sweep=tiny_ablation`` (docs/sweeps.md); in a multirun, finished jobs are
skipped on a rerun into the same ``hydra.sweep.dir``, interrupted ones resume from their ``last.ckpt``, and a
crashed job leaves ``failure.json``.
Paths (``ckpt_path=``, ``paths.kote_dir=`` ...) may hold any character, a sweep job folder's ``=`` and ``,``
included: :mod:`emoreason.cli_args` quotes them for Hydra. Only keys left out of job folder names are quoted,
so a rerun of a sweep still finds its finished jobs.
"""

import sys

from omegaconf import DictConfig

from emoreason.cli import hydra_main
from emoreason.cli_args import quote_free_text
from emoreason.config import register_resolvers
from emoreason.sweeps.jobs import run_hydra_job
from emoreason.train import train

register_resolvers()

PATH_KEYS = ("ckpt_path", "paths.kote_dir", "paths.reasoning_path", "paths.cache_dir")
"""Each in conf/hydra/default.yaml's override_dirname.exclude_keys (tests/test_cli_args.py checks it)."""


@hydra_main(config_name="train")
def main(cfg: DictConfig) -> float:
    """Return validation macro-F1 for Hydra sweepers (Optuna) to optimise: tuning on test would inflate it."""
    report = run_hydra_job(cfg, train)
    return float(report["val"]["tuned"]["macro_f1"]) if "val" in report else float("nan")


if __name__ == "__main__":
    sys.argv[1:] = quote_free_text(sys.argv[1:], paths=PATH_KEYS)
    main()
