"""Exporter: a component that groups objects so they are saved (and loaded) together."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from flambe.compile.component import Component
from flambe.compile.errors import ConfigError


class Exporter(Component):
    """Group objects so that they are saved together, each under its own name.

    Every keyword argument becomes an attribute of the exporter. Components among them are
    children, so ``flambe.save`` writes each one to a sub-directory named after its keyword
    (loadable on its own), while plain values (numbers, strings, lists) are kept in the
    exporter's ``config.yaml``.

    Parameters
    ----------
    **kwargs
        The objects to export, by name. Names must be Python identifiers that do not start with
        an underscore and do not hide an attribute of :class:`~flambe.compile.Component`
        (``run``, ``save``, ...).

    Raises
    ------
    ConfigError
        For a name that cannot be an attribute.

    Examples
    --------
    In a config, after an experiment::

        !Exporter
          model: !MyModel.load_from_path {path: /path/to/model}
          text: !TextField.load_from_path {path: /path/to/field}

    ``flambe.load`` of the saved directory returns the exporter; ``exporter.model`` is the model.
    """

    def __init__(self, **kwargs: Any) -> None:
        for name, value in kwargs.items():
            _check_name(name)
            setattr(self, name, value)
        self._flambe_exported: Tuple[str, ...] = tuple(kwargs)

    @property
    def exported(self) -> Dict[str, Any]:
        """The exported objects by name, in the order they were given."""
        return {name: getattr(self, name) for name in self._flambe_exported}

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.exported.items())
        return f"Exporter({inner})"

    def run(self) -> bool:
        """Nothing to run: an exporter only holds objects. Always returns False."""
        return False


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ConfigError(f"'!Exporter' cannot export under the name {name!r}",
                          hint="names become attributes and sub-directories: use identifiers "
                               "like 'model' or 'text_field', not starting with '_'")
    if hasattr(Exporter, name):
        raise ConfigError(f"'!Exporter' cannot export under the name '{name}': it would hide "
                          f"Exporter.{name}", hint=f"rename it, e.g. '{name}_obj'")
