"""Re-score a checkpoint or tag comments: ``python evaluate.py ckpt_path=... [text=... | input_file=...]``."""

import hydra
from omegaconf import DictConfig

from emoreason.config import register_resolvers
from emoreason.evaluate import evaluate

register_resolvers()


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
