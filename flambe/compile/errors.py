"""Errors a user can cause, each able to say where (file:line:column), which key, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence


@dataclass(frozen=True)
class Location:
    """A position in a config file (1-based line and column, as editors show them)."""

    file: Optional[str]
    line: int
    column: int

    @classmethod
    def from_mark(cls, mark: Any, file: Optional[str] = None) -> Optional["Location"]:
        """Build a location from a ruamel.yaml mark (0-based) or return None."""
        if mark is None:
            return None
        name = file or getattr(mark, "name", None)
        if name in (None, "<unicode string>", "<file>", "<byte string>"):
            name = None
        return cls(name, mark.line + 1, mark.column + 1)

    def __str__(self) -> str:
        return f"{self.file or '<string>'}:{self.line}:{self.column}"


class FlambeError(Exception):
    """Base class of every error flambe reports to a user.

    Parameters
    ----------
    message : str
        What went wrong.
    location : Location, optional
        Where in a config file it went wrong.
    key_path : Sequence[str], optional
        The chain of keys leading to the offending value.
    hint : str, optional
        How to fix it.
    """

    def __init__(self, message: str, location: Optional[Location] = None,
                 key_path: Optional[Sequence[Any]] = None, hint: Optional[str] = None) -> None:
        self.message = message
        self.location = location
        self.key_path = list(key_path) if key_path else []
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(f"{self.location}: ")
        parts.append(self.message)
        if self.key_path:
            parts.append(f" (at key '{format_key_path(self.key_path)}')")
        if self.hint:
            parts.append(f"\n  hint: {self.hint}")
        return "".join(parts)

    def __reduce__(self):  # keep the structured fields through pickling (Ray workers)
        return (_rebuild_error, (type(self), self.message, self.location, self.key_path, self.hint))


def _rebuild_error(cls, message, location, key_path, hint):
    return cls(message, location=location, key_path=key_path, hint=hint)


def format_key_path(path: Sequence[Any]) -> str:
    """Render ``['model', 'encoder', 0]`` as ``model.encoder[0]``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + str(key)
    return out


class ConfigError(FlambeError):
    """Malformed YAML or a config that does not have the expected shape."""


class TagError(ConfigError):
    """A ``!Tag`` that names no registered class."""


class RegistrationError(FlambeError):
    """A class could not be registered, or a tag is ambiguous."""


class CompilationError(ConfigError):
    """A component could not be built from its schema (wrong or missing argument, failing constructor)."""


class LinkError(ConfigError):
    """A link that cannot resolve."""


class MalformedLinkError(LinkError):
    """A link whose text is not ``name[key][key].attr.attr``."""


class UnpreparedLinkError(LinkError):
    """A link whose target has not been built yet."""


class SearchOptionError(ConfigError):
    """A search option (``!g``, ``!s``, distributions) that is malformed or used outside an Experiment."""


class LoadError(FlambeError):
    """A saved object cannot be loaded."""


class SaveError(FlambeError):
    """An object cannot be saved."""


class ExtensionError(FlambeError):
    """An extension is missing or cannot be installed or imported."""
