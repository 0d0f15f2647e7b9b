"""Train a KOTE emotion classifier: ``python train.py [group=option ...] [key=value ...]``.

Defaults: the embedded tiny ELECTRA on KOTE (set KOTE_DIR). See README.md for every config group.
Sweeps: ``python train.py -m +sweep=tiny_ablation`` (docs/sweeps.md); in a multirun, finished jobs are
skipped on a rerun into the same ``hydra.sweep.dir`` and a crashed job leaves ``failure.json``.
"""

import hydra
from omegaconf import DictConfig

from emoreason.config import register_resolvers
from emoreason.sweeps.jobs import run_hydra_job
from emoreason.train import train

register_resolvers()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Return validation macro-F1 for Hydra sweepers (Optuna) to optimise: tuning on test would inflate it."""
    report = run_hydra_job(cfg, train)
    return float(report["val"]["tuned"]["macro_f1"]) if "val" in report else float("nan")


if __name__ == "__main__":
    main()
