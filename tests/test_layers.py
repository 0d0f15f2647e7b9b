"""Imports run one way: labels, config → io, console → data → generation | models → training → evaluation
→ sweeps.

Every module under ``src/emoreason`` is parsed with :mod:`ast` (nothing is imported, so a cycle or a slow
import cannot hide an edge) and each ``import`` / ``from ... import`` it holds — at module level, inside a
function, or under ``if TYPE_CHECKING:`` — must name a module of its own layer or a lower one. Annotation-only
imports count too: a type a lower layer needs belongs in that layer (or below), otherwise the contract it
names lives in the wrong place and a newcomer looks for it in the wrong folder. ``generation`` and ``models``
sit side by side and may not import each other; neither may ``labels`` and ``config``.

``config`` holds the typed schemas and :class:`~emoreason.config.ConfigError`, which every layer raises, and
imports nothing of ours, so it sits at the bottom beside ``labels``. The entry modules (``components``,
``cli``, ``cli_args``, ``config_tree``, ``train``, ``evaluate``) wire the layers together and sit on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "emoreason"

LAYERS: dict[str, int] = {
    "labels": 0,
    "config": 0,
    "io": 1,
    "console": 1,
    "data": 2,
    "generation": 3,
    "models": 3,
    "training": 4,
    "evaluation": 5,
    "sweeps": 6,
}
ENTRY = 7
"""Rank of every other top-level module (and the package's ``__init__``): wiring and command lines."""


def layer_of(module: str) -> tuple[str, int] | None:
    """``emoreason.training.module`` → ``("training", 4)``; None for a module outside the package."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    top = parts[1] if len(parts) > 1 else "__init__"
    return top, LAYERS.get(top, ENTRY)


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import anywhere in ``tree``, relative ones resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if node.module is None or base == PACKAGE:
                # ``from emoreason import io``: the names are the modules.
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def backward_edges(source: str, module: str, is_package: bool = False) -> list[str]:
    """One line per import in ``source`` (the text of ``module``) that names a higher or sibling layer."""
    here = layer_of(module)
    assert here is not None, module
    name, rank = here
    edges = []
    for line, target in imported_modules(ast.parse(source), module, is_package):
        there = layer_of(target)
        if there is None or there[0] == name:
            continue
        if there[1] > rank or (there[1] == rank and rank != ENTRY):
            edges.append(f"{module}:{line} imports {target} ({there[0]} is not below {name})")
    return edges


def modules() -> list[tuple[Path, str, bool]]:
    found = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        found.append((path, ".".join(parts[:-1] if is_package else parts), is_package))
    return found


def test_no_import_runs_backward() -> None:
    found = modules()
    assert len(found) > 50, "the source tree was not found"
    edges = [e for path, module, pkg in found for e in backward_edges(path.read_text("utf-8"), module, pkg)]
    assert edges == [], "imports against the layer order:\n" + "\n".join(edges)


def test_every_package_is_placed_in_a_layer() -> None:
    """A new subpackage must be given a rank here, not silently treated as an entry module."""
    packages = {p.name for p in (SRC / PACKAGE).iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"subpackages without a layer: {sorted(packages - set(LAYERS))}"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # A method (models) reaching into the LightningModule (training) for a type.
        ("emoreason.models.methods.generative", "from emoreason.training.module import Batch\n", 1),
        # Inside a function and under TYPE_CHECKING count as well.
        ("emoreason.training.loggers", "def f():\n    from emoreason.sweeps import overrides\n", 1),
        (
            "emoreason.data.kote",
            "if TYPE_CHECKING:\n    from emoreason.training import module\n",
            1,
        ),
        # Side-by-side layers may not import each other; relative imports are resolved.
        ("emoreason.generation.run", "from ..models import lora\n", 1),
        ("emoreason.config", "from emoreason.labels import LABELS\n", 1),
        # Downward, same-package and outside imports pass; entry modules may import anything.
        ("emoreason.evaluation.scoring", "from emoreason.training.module import EmotionModule\n", 0),
        ("emoreason.training.module", "from . import metrics\nimport torch\n", 0),
        ("emoreason.components", "from emoreason.sweeps import jobs\nfrom emoreason import train\n", 0),
        ("emoreason.sweeps.jobs", "from emoreason import io, config\n", 0),
        ("emoreason.sweeps.jobs", "from emoreason import train\n", 1),
    ],
)
def test_backward_edges_are_found(module: str, source: str, expected: int) -> None:
    assert len(backward_edges(source, module)) == expected
