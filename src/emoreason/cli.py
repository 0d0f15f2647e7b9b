"""What every entry point does with a user's mistake: one line on stderr and exit status 2.

Why: a missing KOTE folder, a misspelt key, a wrong value, an unknown model or a report on a folder that is
not a sweep used to print 20–85 lines of traceback before the one line that said what to do. A user error
is an exception of a class below (each is raised with a message naming the file, line or key); the
traceback is still printed with ``HYDRA_FULL_ERROR=1`` (Hydra's own switch), and any other exception is a
bug and keeps its traceback (exit status 1). ``SystemExit`` passes through untouched, so an entry point's
own exit codes (``generate.py``'s 1, "rerun to continue") stay its own.

Two places catch, one handler: errors a Hydra job raises are caught inside the task function (in a single
run), before Hydra writes its "Error executing job" line; errors of composing the config (an unknown
group option, a key not in the config, an unparsable override) are raised by Hydra before the task runs,
so the entry point asks Hydra to re-raise them (``HYDRA_FULL_ERROR=1`` for Hydra's own handler) and catches
them around ``hydra.main``. In a multirun a job's error is left to Hydra's sweeper (the other jobs still
run, ``failure.json`` records it); the sweep's first failure then ends here.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException, OverrideParseException
from hydra.types import RunMode, TaskFunction
from omegaconf import DictConfig

from emoreason.config import moved_key_hint

USER_ERROR = 2
FULL_ERROR = "HYDRA_FULL_ERROR"
_FULL_ERROR_ASKED = "EMOREASON_FULL_ERROR_ASKED"
"""Whether the user (not this module) set HYDRA_FULL_ERROR; inherited by processes Lightning launches."""

USER_ERROR_CLASSES: tuple[str, ...] = (
    "emoreason.config.ConfigError",
    "emoreason.data.kote.KoteFormatError",
    "emoreason.data.kote.KoteDownloadError",
    "emoreason.data.sources.ReasoningJoinError",
    "emoreason.data.reasoning.ReasoningFormatError",
    "emoreason.models.backbones.BackboneUnavailableError",
    "emoreason.generation.errors.GenerationError",
    "emoreason.evaluation.records.RecordError",
    "emoreason.sweeps.collect.NotASweepError",
    "emoreason.sweeps.paired.PredictionsError",
    "hydra.errors.ConfigCompositionException",
    "hydra.errors.OverrideParseException",
    "hydra.errors.MissingConfigException",
    "lightning.fabric.utilities.exceptions.MisconfigurationException",  # Lightning's own "you set X wrong"
)
"""``module.Class`` of every exception that is the user's to fix. Looked up in ``sys.modules`` only: a class
whose module was never imported cannot have been raised, and an entry point such as report.py does not pay
for importing torch to recognise its own errors."""


def _classes() -> tuple[type[BaseException], ...]:
    found = []
    for qualified in USER_ERROR_CLASSES:
        module, name = qualified.rsplit(".", 1)
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def is_user_error(exc: BaseException) -> bool:
    """A listed class, or Hydra's instantiation error over one of them or over bad arguments to a target.

    ``InstantiationException`` from a ``TypeError`` is a key the ``_target_`` does not take (``+model.foo=1``)
    or a value of the wrong kind: Hydra's message names the key (``full_key``).
    """
    if isinstance(exc, _classes()):
        return True
    cause = exc.__cause__
    return isinstance(exc, InstantiationException) and (
        isinstance(cause, TypeError) or (cause is not None and is_user_error(cause))
    )


def one_line(exc: BaseException) -> str:
    """The exception's message on one line: Hydra's search-path listing dropped, line breaks joined.

    An override Hydra cannot parse is named first: its parser's message quotes only the failing token.
    """
    cause = exc.__cause__
    key = ""
    if isinstance(exc, InstantiationException) and cause is not None and isinstance(cause, _classes()):
        # The target's own refusal, without Hydra's "Error in call to target"; Hydra's full_key is kept
        # where the refusal does not name it (Lightning's "`mode` can be min, max" for callbacks.*).
        found = re.search(r"^full_key: (\S+)$", str(exc), re.MULTILINE)
        key = f"{found[1]}: " if found and found[1] not in str(cause) else ""
        exc = cause
    text = key + moved_key_hint(re.split(r"\n\s*Config search path:", str(exc))[0])
    if isinstance(exc, OverrideParseException):
        text = f"cannot parse override {exc.override!r}: {text}"
    parts = [part.strip() for part in text.splitlines() if part.strip()] or [type(exc).__name__]
    return " ".join([*(p if p.endswith((".", ":", ";")) else f"{p};" for p in parts[:-1]), parts[-1]])


def full_error_asked() -> bool:
    return os.environ.get(_FULL_ERROR_ASKED, os.environ.get(FULL_ERROR, "")) == "1"


def exit_user_error(exc: BaseException) -> NoReturn:
    """Print ``<program>: error: <message>`` and exit with status 2."""
    program = Path(sys.argv[0]).name or "emoreason"
    print(f"{program}: error: {one_line(exc)} (traceback: {FULL_ERROR}=1)", file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR)


def guard(entry: Callable[[], Any]) -> Any:
    """Run ``entry()``; a user error becomes one line and exit 2, unless HYDRA_FULL_ERROR=1 was asked for."""
    asked = full_error_asked()
    saved = {key: os.environ.get(key) for key in (FULL_ERROR, _FULL_ERROR_ASKED)}
    os.environ[_FULL_ERROR_ASKED] = "1" if asked else "0"
    os.environ[FULL_ERROR] = "1"  # Hydra re-raises composition errors instead of printing and exiting 1
    try:
        return entry()
    except Exception as exc:
        if asked or not is_user_error(exc):
            raise
        exit_user_error(exc)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _single_run() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.RUN


def hydra_main(config_name: str) -> Callable[[TaskFunction], Callable[[], Any]]:
    """``hydra.main(config_path="conf", config_name=..., version_base="1.3")`` with :func:`guard` around it.

    ``config_path`` is relative to the entry script (Hydra unwraps ``functools.wraps`` to find it).
    """

    def decorate(task: TaskFunction) -> Callable[[], Any]:
        @functools.wraps(task)
        def guarded_task(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except Exception as exc:
                if full_error_asked() or not _single_run() or not is_user_error(exc):
                    raise
                exit_user_error(exc)

        entry = hydra.main(config_path="conf", config_name=config_name, version_base="1.3")(guarded_task)

        @functools.wraps(task)
        def main() -> Any:
            return guard(entry)

        return main

    return decorate
