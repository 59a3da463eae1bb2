"""Prompts as versioned artifacts: a named template whose version is its content hash.

A model call given a prompt stores the template once per version (on first use in a
store) and records which version it rendered, so `legato prompts show NAME --version V`
gives the exact text behind any recorded answer.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from typing import Any

from legato.ai.types import Message
from legato.errors import ConfigurationError

_SYSTEM_MARK = "\n\x1e--- system ---\n"  # separates the system part in the stored template


def _fields(template: str) -> tuple[str, ...]:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigurationError(
            f"prompt template is not valid ({exc}); write variables as {{name}} and a literal "
            "brace as {{ or }}"
        ) from exc
    return tuple(dict.fromkeys(n.split(".")[0].split("[")[0] for n in names))


@dataclass(frozen=True)
class Prompt:
    """``Prompt("classify", "Classify this ticket: {ticket}", system="You are ...")``.

    Variables are written ``{name}`` (``str.format``; a literal brace is ``{{``).
    ``version`` is the first 12 hex digits of the SHA-256 of the template (and the
    system text): the same text is the same version wherever it is defined.
    """

    name: str
    template: str
    system: str | None = None
    version: str = field(init=False)
    variables: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("Prompt needs a non-empty name, e.g. Prompt('triage', '...')")
        if not isinstance(self.template, str):
            raise ConfigurationError(f"Prompt {self.name!r}: the template must be a string")
        names = _fields(self.template) + (_fields(self.system) if self.system else ())
        object.__setattr__(self, "variables", tuple(dict.fromkeys(names)))
        digest = hashlib.sha256(self.stored_text.encode("utf-8")).hexdigest()
        object.__setattr__(self, "version", digest[:12])

    @property
    def stored_text(self) -> str:
        """The text kept in the store for this version (template, then the system part)."""
        return self.template if self.system is None else self.template + _SYSTEM_MARK + self.system

    def render(self, **variables: Any) -> RenderedPrompt:
        missing = [name for name in self.variables if name not in variables]
        if missing:
            raise ConfigurationError(
                f"prompt {self.name!r} (version {self.version}) needs "
                f"{', '.join(missing)}; pass them to render(...)"
            )
        system = self.system.format(**variables) if self.system else None
        return RenderedPrompt(self, self.template.format(**variables), system)

    __call__ = render


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt with its variables filled in, ready to pass to `legato.ai.call`."""

    prompt: Prompt
    text: str
    system: str | None = None

    def messages(self) -> tuple[Message, ...]:
        user = Message("user", self.text)
        return (user,) if self.system is None else (Message("system", self.system), user)


def split_stored_text(text: str) -> tuple[str, str | None]:
    """(template, system) from the text a prompt version is stored as."""
    template, mark, system = text.partition(_SYSTEM_MARK)
    return template, (system if mark else None)
