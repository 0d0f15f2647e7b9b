"""Train a KOTE emotion classifier: ``python train.py [group=option ...] [key=value ...]``.

Defaults: the embedded tiny ELECTRA on KOTE (set KOTE_DIR). See README.md for every config group.
"""

import hydra
from omegaconf import DictConfig

from emoreason.config import register_resolvers
from emoreason.train import train

register_resolvers()


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Return test macro-F1 so Hydra sweepers (Optuna) can optimise it."""
    report = train(cfg)
    return float(report["test"]["tuned"]["macro_f1"]) if "test" in report else float("nan")


if __name__ == "__main__":
    main()
