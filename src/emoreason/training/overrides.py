"""What identifies a sweep job: its Hydra overrides, minus the environment-only ones and (for cells) the seed.

The same identity names a job's folder (Hydra's ``override_dirname``), its W&B ``job_type`` and tags, and its
cell in the sweep report, so a bar in the chart, a folder on disk and a group of W&B runs always line up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

SEED_KEY = "seed"


def identity_overrides(
    overrides: Sequence[str], exclude_keys: Iterable[str], *, drop_seed: bool = False
) -> list[str]:
    """Sorted override lines (as typed) whose key Hydra's ``override_dirname`` would keep.

    ``exclude_keys`` is ``hydra.job.config.override_dirname.exclude_keys``; ``drop_seed`` also leaves out
    ``seed=...``, giving the cell that runs differing only in seed share.
    """
    excluded = set(exclude_keys) | ({SEED_KEY} if drop_seed else set())
    parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
    return sorted(o.input_line for o in parsed if o.key_or_group not in excluded and o.input_line)


def split_override(line: str) -> tuple[str, str]:
    """``"data=kote_plain"`` → ``("data", "kote_plain")``; a deletion (``~key``) has an empty value."""
    key, _, value = line.partition("=")
    return key, value
