"""Command-line values Hydra's override grammar cannot take as typed: comments and file paths.

Why: ``@hydra.main`` parses every ``key=value`` argument with its override grammar
(``hydra/grammar/OverrideLexer.g4``), in which an unquoted value may hold only ASCII letters, digits, spaces
and ``/-\\+.$%*@?|:``. Once the shell has removed the user's quotes, ``text=아 진짜 어이가 없네`` stops at the
first Korean character, ``,`` turns a value into a sweep, and a checkpoint inside a sweep job folder
(``multirun/.../data=kote_plain,seed=0/checkpoints/last.ckpt``) cannot be passed back at all. Entry scripts
therefore rewrite the values of their free-text and path keys into single-quoted Hydra strings before
Hydra reads ``sys.argv``, so what the user typed is what the config holds.

Two parsers read a value, and both are escaped for: Hydra un-escapes backslashes before a quote (a quoted
value may hold any other character), then OmegaConf resolves ``${...}`` inside any string, quoted or not
(``omegaconf/grammar_visitor.py``: ``\\${`` is a literal ``${``; ``\\\\\\${`` a backslash and a literal
``${``). Free text is kept literal; paths keep their interpolations (``paths.kote_dir=${oc.env:HOME}/kote``).

A value the user already wrapped whole in Hydra quotes (``text="'...'"`` at the shell) is left as it is, so
Hydra's documented quoting keeps working; a comment that is itself wrapped in quotes is tagged from a file
(``input_file=``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from hydra.core.override_parser.overrides_visitor import HydraErrorListener
from hydra.errors import HydraException
from hydra.grammar.gen.OverrideLexer import InputStream, OverrideLexer  # type: ignore[attr-defined]

_BEFORE_INTERPOLATION = re.compile(r"(\\*)\$\{")
_BEFORE_QUOTE = re.compile(r"(\\*)'")
_TRAILING_BACKSLASHES = re.compile(r"\\+$")


def hydra_quoted(value: str, *, literal: bool) -> str:
    """``value`` as one single-quoted Hydra override value that Hydra and OmegaConf give back unchanged.

    ``literal`` also escapes ``${`` so OmegaConf does not interpolate it (free text); without it,
    interpolations in the value resolve as in any config value (paths).
    """
    if literal:  # OmegaConf: k backslashes then ``${`` are written 2k+1 backslashes then ``${``
        value = _BEFORE_INTERPOLATION.sub(lambda m: "\\" * (2 * len(m[1]) + 1) + "${", value)
    value = _BEFORE_QUOTE.sub(lambda m: "\\" * (2 * len(m[1]) + 1) + "'", value)  # Hydra: \' is a quote
    value = _TRAILING_BACKSLASHES.sub(lambda m: m[0] * 2, value)  # ... and \\ before the closing quote is \
    return f"'{value}'"


def is_hydra_quoted(value: str) -> bool:
    """Whether Hydra's own lexer reads ``value`` as exactly one quoted string (the user quoted it)."""
    lexer = OverrideLexer(InputStream(value))
    lexer.removeErrorListeners()
    lexer.addErrorListener(HydraErrorListener())  # raises instead of skipping a character it cannot read
    lexer.mode(OverrideLexer.VALUE_MODE)
    try:
        tokens = lexer.getAllTokens()
    except HydraException:
        return False
    return len(tokens) == 1 and tokens[0].type == OverrideLexer.QUOTED_VALUE


def quote_free_text(
    argv: Sequence[str], *, literal: Collection[str] = (), paths: Collection[str] = ()
) -> list[str]:
    """``argv`` with each ``key=value`` of a ``literal`` or ``paths`` key rewritten by :func:`hydra_quoted`.

    Other arguments (flags, ``group=option``, sweeps of other keys) pass through untouched, as does a value
    already in Hydra quotes. An empty value becomes ``''``, an empty string, for the task to reject by name.
    """
    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and (key in literal or key in paths) and not is_hydra_quoted(value):
            arg = f"{key}={hydra_quoted(value, literal=key in literal)}"
        quoted.append(arg)
    return quoted
