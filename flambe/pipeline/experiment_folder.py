"""Experiment folders (Fireworks' ``Experiment``): one numbered directory per run of an analysis, with its
metadata, the files it writes and the SQLite databases it keeps.

``ExperimentFolder('mnist', 'runs')`` creates ``runs/mnist_1`` (then ``runs/mnist_2``, ...: the next integer
after the highest one there, never a timestamp) and writes ``metadata.json`` in it (name, description,
creation time and a user dict). :meth:`ExperimentFolder.open` gives file handles inside the folder,
:meth:`ExperimentFolder.get_engine` / :meth:`ExperimentFolder.get_session` SQLAlchemy engines and sessions
on ``<folder>/<name>.sqlite``, and :func:`load_experiment` reopens a folder later.

It is a plain class, not a :class:`~flambe.compile.Component`: it holds open engines and is made where the
data is analysed, never built from YAML. ``Experiment`` (Fireworks' name) is an alias importable from
``flambe.pipeline`` only; it is no YAML tag, since ``!Experiment`` is the experiment runner's.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, Dict, Optional, Union

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

__all__ = ["ExperimentFolder", "Experiment", "load_experiment", "METADATA_FILE"]

METADATA_FILE = "metadata.json"


def _check_name(name: str, what: str) -> str:
    """``name`` if it is usable as one path component (it is never altered)."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or os.sep in name \
            or (os.altsep and os.altsep in name) or "\0" in name:
        raise ValueError(f"invalid {what} {name!r}: use a non-empty name without path separators")
    return name


def _write_json(path: str, data: Dict[str, Any]) -> None:
    """Write ``data`` atomically (a temporary sibling renamed over ``path``)."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
    os.replace(temporary, path)


def _numbered(db_path: str, name: str) -> Dict[int, str]:
    """The existing folders ``<name>_<n>`` in ``db_path``, by ``n``."""
    pattern = re.compile(re.escape(name) + r"_(\d+)")
    found: Dict[int, str] = {}
    if os.path.isdir(db_path):
        for entry in os.listdir(db_path):
            match = pattern.fullmatch(entry)
            if match and os.path.isdir(os.path.join(db_path, entry)):
                found[int(match.group(1))] = entry
    return found


class ExperimentFolder:
    """A numbered folder holding one experiment's metadata, files and SQLite databases.

    Parameters
    ----------
    experiment_name : str
        The experiment's name (one path component; kept exactly as given).
    db_path : str
        The directory the experiment folders live in (created if missing).
    description : str, optional
        A description, stored in ``metadata.json``.
    load : bool
        Reopen an existing folder instead of creating one: ``<db_path>/<experiment_name>`` when it is an
        experiment folder, else the highest-numbered ``<db_path>/<experiment_name>_<n>``.

    Attributes
    ----------
    name : str
        The experiment's name.
    path : str
        The experiment's folder.
    index : int or None
        The folder's number ``n``.
    description : str or None
        The description.
    created : float
        Creation time (seconds since the epoch).
    engines : dict
        The engines made by :meth:`get_engine`, by name.

    Raises
    ------
    FileNotFoundError
        With ``load=True``, when there is no such experiment folder.
    """

    def __init__(self, experiment_name: str, db_path: str, description: Optional[str] = None,
                 load: bool = False) -> None:
        self.name = _check_name(experiment_name, "experiment name")
        self.db_path = os.path.abspath(db_path)
        self.description = description
        self.engines: Dict[str, Engine] = {}
        self._metadata: Dict[str, Any] = {}
        self.created = time.time()
        self.index: Optional[int] = None
        if load:
            direct = os.path.join(self.db_path, experiment_name)
            if os.path.isfile(os.path.join(direct, METADATA_FILE)):
                self.load_experiment(direct)
                return
            numbered = _numbered(self.db_path, experiment_name)
            if not numbered:
                raise FileNotFoundError(f"no experiment folder '{experiment_name}' or '{experiment_name}_<n>' "
                                        f"in {self.db_path}")
            self.load_experiment(os.path.join(self.db_path, numbered[max(numbered)]))
            return
        self.path = self.create_dir()
        self.init_metadata()

    # ------------------------------------------------------------------ folder and metadata
    def create_dir(self) -> str:
        """Create the folder ``<db_path>/<name>_<n>`` (``n``: one more than the highest existing) and
        return its path. Safe against concurrent creators: a number taken meanwhile is skipped."""
        os.makedirs(self.db_path, exist_ok=True)
        existing = _numbered(self.db_path, self.name)
        index = max(existing) + 1 if existing else 1
        while True:
            path = os.path.join(self.db_path, f"{self.name}_{index}")
            try:
                os.mkdir(path)
            except FileExistsError:
                index += 1
                continue
            self.index, self.path = index, path
            return path

    def init_metadata(self) -> None:
        """Write ``metadata.json`` if the folder has none yet (idempotent)."""
        if not os.path.exists(os.path.join(self.path, METADATA_FILE)):
            self.save_metadata()

    def metadata_record(self) -> Dict[str, Any]:
        """Everything ``metadata.json`` holds: name, description, creation time, folder number, user dict."""
        return {"name": self.name, "description": self.description, "created": self.created,
                "created_iso": datetime.fromtimestamp(self.created, timezone.utc).isoformat(),
                "index": self.index, "metadata": self._metadata}

    def save_metadata(self) -> None:
        """Persist the metadata (call it after changing :attr:`metadata` in place)."""
        _write_json(os.path.join(self.path, METADATA_FILE), self.metadata_record())

    def load_metadata(self) -> Dict[str, Any]:
        """Read ``metadata.json`` back into this object; returns the user metadata."""
        with open(os.path.join(self.path, METADATA_FILE)) as handle:
            record = json.load(handle)
        self.name = record.get("name", self.name)
        self.description = record.get("description")
        self.created = record.get("created", self.created)
        self.index = record.get("index")
        self._metadata = dict(record.get("metadata") or {})
        return self._metadata

    @property
    def metadata(self) -> Dict[str, Any]:
        """The user metadata (a dict saved in ``metadata.json``; assigning it saves it)."""
        return self._metadata

    @metadata.setter
    def metadata(self, value: Dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"metadata must be a dict, not {type(value).__name__}")
        self._metadata = dict(value)
        self.save_metadata()

    def load_experiment(self, path: Optional[str] = None, experiment_name: Optional[str] = None) -> None:
        """Point this object at the existing experiment folder ``path`` (default: its own) and read its
        metadata; ``experiment_name`` renames it (saved in ``metadata.json``)."""
        path = os.path.abspath(path or self.path)
        if not os.path.isfile(os.path.join(path, METADATA_FILE)):
            raise FileNotFoundError(f"{path} is not an experiment folder (it has no {METADATA_FILE})")
        self.path = path
        self.db_path = os.path.dirname(path)
        self.engines = {}
        self.load_metadata()
        if experiment_name is not None and experiment_name != self.name:
            self.name = _check_name(experiment_name, "experiment name")
            self.save_metadata()

    # ------------------------------------------------------------------ files and databases
    def file_path(self, filename: str) -> str:
        """The path of ``filename`` (relative, possibly with subfolders) inside the folder."""
        if not filename or os.path.isabs(filename):
            raise ValueError(f"invalid file name {filename!r}: give a path relative to the experiment folder")
        path = os.path.normpath(os.path.join(self.path, filename))
        if os.path.commonpath([path, self.path]) != self.path or path == self.path:
            raise ValueError(f"{filename!r} is not inside the experiment folder {self.path}")
        return path

    def open(self, filename: str, mode: str = "r", *args: Any, string_only: bool = False,
             **kwargs: Any) -> Union[IO[Any], str]:
        """A handle to ``filename`` inside the folder (missing subfolders are created when writing).

        Parameters
        ----------
        filename : str
            A path relative to the folder.
        mode : str
            As for :func:`open` (``'x'`` refuses to overwrite an existing file).
        *args, **kwargs
            More arguments for :func:`open`.
        string_only : bool
            Return the path instead of opening it (to write the file with another library).
        """
        path = self.file_path(filename)
        if string_only:
            return path
        if any(flag in mode for flag in "wax+"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, mode, *args, **kwargs)

    def get_engine(self, name: str) -> Engine:
        """The SQLAlchemy engine of ``<folder>/<name>.sqlite`` (created on first use; it waits up to 30 s
        for a lock and uses write-ahead logging, so several processes can share the file)."""
        _check_name(name, "database name")
        if name not in self.engines:
            from flambe.pipeline.database import get_engine
            self.engines[name] = get_engine(f"sqlite:///{os.path.join(self.path, name)}.sqlite")
        return self.engines[name]

    def get_session(self, name: str) -> Session:
        """A new SQLAlchemy ORM session on the database ``name`` (see :meth:`get_engine`)."""
        from sqlalchemy.orm import Session
        return Session(bind=self.get_engine(name))

    def close(self) -> None:
        """Release the connections of every engine this object made."""
        for engine in self.engines.values():
            engine.dispose()

    def __getstate__(self) -> Dict[str, Any]:
        """A copy (e.g. sent to another process) makes its own engines."""
        return {**self.__dict__, "engines": {}}

    def __repr__(self) -> str:
        return f"ExperimentFolder(name={self.name!r}, path={self.path!r})"


def load_experiment(experiment_path: str) -> ExperimentFolder:
    """Reopen the experiment folder ``experiment_path`` with its metadata (its name is the one in
    ``metadata.json``, exactly as it was given).

    Raises
    ------
    FileNotFoundError
        When the folder has no ``metadata.json``.
    """
    folder = ExperimentFolder.__new__(ExperimentFolder)
    folder.engines = {}
    folder.name, folder.description, folder.index = "", None, None
    folder.created, folder._metadata = 0.0, {}
    folder.load_experiment(experiment_path)
    return folder


#: Fireworks' name for :class:`ExperimentFolder` (importable from ``flambe.pipeline``; not a YAML tag).
Experiment = ExperimentFolder
