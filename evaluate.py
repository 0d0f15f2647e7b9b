"""Re-score a checkpoint or tag comments: ``python evaluate.py ckpt_path=... [text=... | input_file=...]``.

Comments and paths may hold any character (Korean, spaces, ``, = : # ' ${``, a sweep job folder's
``key=value,...`` name): :mod:`emoreason.cli_args` quotes them for Hydra before it parses the command line.
A user error (bad value, missing or unreadable file) is one line and exit status 2 (:mod:`emoreason.cli`).
"""

import sys

from omegaconf import DictConfig

from emoreason.cli import hydra_main
from emoreason.cli_args import quote_free_text
from emoreason.config import register_resolvers
from emoreason.evaluate import evaluate

register_resolvers()

FREE_TEXT_KEYS = ("text",)
PATH_KEYS = (
    "ckpt_path",
    "data_file",
    "input_file",
    "output_file",
    "paths.kote_dir",
    "paths.reasoning_path",
    "paths.cache_dir",
    "paths.output_dir",
)


@hydra_main(config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    sys.argv[1:] = quote_free_text(sys.argv[1:], literal=FREE_TEXT_KEYS, paths=PATH_KEYS)
    main()
