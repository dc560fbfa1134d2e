"""A small `{{name}}` renderer for per-recipient text: substitution only, no code in user text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["MissingVariables", "Template"]

# `{{ firstName }}`: a name of letters, digits and underscores (not starting with a digit),
# with optional spaces inside the braces. Anything else in braces is left as written.
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
_BRACED: Final = re.compile(r"\{\{[^{}]*\}\}")  # anything written as a placeholder


class MissingVariables(ValueError):
    """The values lack names the text uses."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


@dataclass(frozen=True, slots=True)
class Template:
    """A message text and the variable names it uses, in order of first use."""

    text: str
    names: tuple[str, ...]
    # The text split at its placeholders: literal, name, literal, name, …, literal.
    parts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Template:
        names = dict.fromkeys(match.group(1) for match in _PLACEHOLDER.finditer(text))
        return cls(text, tuple(names), tuple(_PLACEHOLDER.split(text)))

    @property
    def is_plain(self) -> bool:
        return not self.names

    @property
    def malformed(self) -> list[str]:
        """What is written as a placeholder but is not one (`{{First Name}}`), each once: it
        would be sent as typed."""
        braced = (match.group(0) for match in _BRACED.finditer(self.text))
        return list(dict.fromkeys(b for b in braced if not _PLACEHOLDER.fullmatch(b)))

    def missing(self, values: Mapping[str, str]) -> list[str]:
        return [name for name in self.names if name not in values]

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced; `MissingVariables` when a value is absent."""
        if self.is_plain:
            return self.text
        absent = self.missing(values)
        if absent:
            raise MissingVariables(absent)
        parts = self.parts
        pieces = [values[part] if index % 2 else part for index, part in enumerate(parts)]
        return "".join(pieces)
