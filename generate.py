"""Step 1 of the paper: reasoning for labelled KOTE comments (docs/generation.md; ``--help`` for the config).

Exit status: 0 when the dataset is complete (a dry run: when every call it plans fits under max_cost_usd),
1 when items are still missing and rerunning continues (the line printed says which key or command), 2 on
an error (bad config or override, fatal API error, corrupt cache, a bug), always as one line, never a
traceback.
"""

import atexit
import gc
import logging
import sys

from omegaconf import DictConfig

from emoreason.cli import exit_user_error, hydra_main
from emoreason.config import ConfigError
from emoreason.generation.config import renamed_key
from emoreason.generation.errors import GenerationError
from emoreason.generation.faults import Redactor
from emoreason.generation.run import generate

log = logging.getLogger("generate")


@hydra_main(config_name="generate")
def main(cfg: DictConfig) -> None:
    # One INFO line per HTTP request would bury the progress bar and the log.
    for name in ("httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        summary = generate(cfg)
    except ConfigError as exc:  # the user's to fix: one line on stderr, as train.py and evaluate.py say it
        exit_user_error(exc)
    except GenerationError as exc:  # what happened to the run: into its log, with the exit status it means
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        log.error("interrupted: every finished call is kept; rerun the same command to continue")
        sys.exit(1)
    except Exception as exc:  # a bug: still one line, and still no key in it
        log.debug("traceback", exc_info=True)
        log.error("internal error, please report it: %s", Redactor()(f"{type(exc).__name__}: {exc}"))
        sys.exit(2)
    if not summary["complete"]:
        log.warning("incomplete: %s", summary["next_step"])
        sys.exit(1)


if __name__ == "__main__":
    # Last of the exit handlers: every file is closed and fsynced by then. The interpreter's final collection
    # would otherwise walk every object the SDK and Hydra made (~1 s) only to free memory the OS frees anyway.
    atexit.register(gc.freeze)
    if (moved := renamed_key(arg for arg in sys.argv[1:] if "=" in arg or arg.startswith("~"))) is not None:
        exit_user_error(moved)  # before Hydra, whose own message would not name the new key
    main()
