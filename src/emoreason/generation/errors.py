"""Errors that stop a generation run; each message says what went wrong and what to do about it."""

from __future__ import annotations


class GenerationError(RuntimeError):
    """Base class: ``generate.py`` prints these without a traceback and exits with status 2."""


class ConfigError(GenerationError, ValueError):
    """A config value that cannot work; the message names the key."""


class FatalAPIError(GenerationError):
    """The API refused in a way retrying cannot fix (authentication, unknown model, no quota)."""


class CacheError(GenerationError):
    """The generation cache cannot be used (corrupt line, held by another run)."""
