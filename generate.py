"""Step 1 of the paper: reasoning for labelled KOTE comments (docs/generation.md; ``--help`` for the config).

Exit status: 0 when the dataset is complete, 1 when items are still missing (rerun to continue), 2 on an
error (bad config, fatal API error, corrupt cache), printed without a traceback.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from emoreason.generation.errors import GenerationError
from emoreason.generation.run import generate

log = logging.getLogger("generate")


@hydra.main(config_path="conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    # One INFO line per HTTP request would bury the progress bar and the log.
    for name in ("httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        summary = generate(cfg)
    except GenerationError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if not summary["complete"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
