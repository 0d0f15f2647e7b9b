"""The reasoning prompt (the paper's Fig. 2): comment and gold label names in, step-by-step reasoning out."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass

from emoreason.config import ConfigError
from emoreason.generation.config import PromptConfig
from emoreason.labels import LABEL_SEPARATOR

PROMPT_FIELDS = frozenset({"text", "labels"})

Message = dict[str, str]


@dataclass(frozen=True)
class PromptTemplate:
    """A validated prompt: ``render`` turns one comment into Chat Completions messages.

    ``user`` is a ``str.format`` template; ``system`` is sent verbatim.
    """

    version: str
    system: str
    user: str

    @classmethod
    def from_config(cls, cfg: PromptConfig) -> PromptTemplate:
        """Check the templates up front, so a typo in a field name fails before any call, not at item 1."""
        if not cfg.version.strip():
            raise ConfigError("prompt.version must be a non-empty string (it is part of every cache key)")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(cfg.user) if name is not None}
        except ValueError as exc:
            raise ConfigError(
                f"prompt.user: bad template ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        if fields != PROMPT_FIELDS:
            raise ConfigError(
                f"prompt.user must use exactly the fields {{text}} and {{labels}}, found {sorted(fields)}; "
                "write literal braces as {{ }}"
            )
        return cls(version=cfg.version, system=cfg.system, user=cfg.user)

    def render(self, text: str, labels: tuple[str, ...]) -> list[Message]:
        """System and user messages for one comment; label names are joined like generated targets."""
        user = self.user.format(text=text, labels=LABEL_SEPARATOR.join(labels))
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    @property
    def fingerprint(self) -> str:
        """A hash of version and both templates: editing a template without a new version still counts."""
        payload = json.dumps([self.version, self.system, self.user], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
