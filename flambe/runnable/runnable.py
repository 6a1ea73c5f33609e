"""Runnable: a top-level object the ``flambe`` command can run."""

from __future__ import annotations

import configparser
import os
from typing import Any, Dict, Optional

from flambe.compile.errors import FlambeError
from flambe.compile.mapped import MappedRegistrable


class MissingSecretsError(FlambeError):
    """The secrets file given with ``--secrets`` does not exist or cannot be parsed."""


class Runnable(MappedRegistrable, should_register=False):
    """The top-level object of a config (``!Experiment``, a cluster, or an extension's own).

    Subclasses implement :meth:`run`. Secrets given with ``--secrets`` are readable as
    ``self.config['SECTION']['KEY']``; they are never part of the object's YAML.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Runnable":
        obj = super().__new__(cls)
        object.__setattr__(obj, "config", configparser.ConfigParser())
        object.__setattr__(obj, "extensions", {})
        return obj

    def inject_secrets(self, secrets: str) -> None:
        """Read an INI file into :attr:`config`.

        Raises
        ------
        MissingSecretsError
            If the file does not exist or is not valid INI.
        """
        if not os.path.isfile(secrets):
            raise MissingSecretsError(f"Secrets file '{secrets}' does not exist",
                                      hint="pass an INI file: [SECTION] then KEY = value lines")
        config = configparser.ConfigParser()
        try:
            config.read(secrets)
        except configparser.Error as exc:
            raise MissingSecretsError(f"Secrets file '{secrets}' is not valid INI: {exc.message}") from None
        self.config = config

    def inject_extensions(self, extensions: Dict[str, str]) -> None:
        """Record the extensions of the config this runnable came from."""
        self.extensions = dict(extensions)

    def parse(self) -> None:
        """Validate the runnable before it runs; raise a :class:`FlambeError` on a problem."""

    def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> Optional[Any]:
        """Run. ``force`` lets the runnable overwrite earlier results; ``debug`` asks for a debugger."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")
