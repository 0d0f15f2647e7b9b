"""Errors that stop a generation run; each message says what went wrong and what to do about it.

A config value that cannot work is :class:`emoreason.config.ConfigError`, the one every layer raises;
``generate.py`` exits 2 on it, as on a :class:`GenerationError`.
"""

from __future__ import annotations


class GenerationError(RuntimeError):
    """Base class: ``generate.py`` prints these as one line, without a traceback, and exits ``exit_code``.

    2 (the default) means "an error to fix"; 1 is kept for "nothing is wrong, rerun to continue".
    """

    exit_code = 2


class FatalAPIError(GenerationError):
    """The API refused in a way retrying cannot fix (authentication, unknown model, no quota), or it failed
    the same way on nearly every recent call (the circuit breaker)."""


class RerunLaterError(GenerationError):
    """The server asks for a longer wait than ``generator.max_wait_s``: stop now, keep everything, rerun."""

    exit_code = 1


class CacheError(GenerationError):
    """The generation cache cannot be used (corrupt line, held by another run)."""
