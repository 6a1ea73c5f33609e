"""Hierarchical save and load: one directory per component, each loadable on its own.

Every component directory holds ``state.pt`` (tensors and plain values, read with
``torch.load(weights_only=True)``), ``config.yaml`` (standalone: links that leave the component are
written as values), ``version.txt`` (``ClassName:x.y.z``), ``source.py``, ``protocol_version.txt`` and,
when needed, ``stash.pkl`` (values YAML and weights-only loading cannot hold). ``requirements.txt`` sits
at the root. Writes go to a temporary sibling that is renamed into place, so a crash never leaves a
half-written save.
"""

from __future__ import annotations

import functools
import glob
import inspect
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import uuid
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from flambe.compile.component import FLAMBE_CLASS_KEY, FLAMBE_VERSION_KEY, Component, State, check_version
from flambe.compile.errors import FlambeError, LoadError, SaveError

logger = logging.getLogger(__name__)

STATE_FILE = "state.pt"
CONFIG_FILE = "config.yaml"
VERSION_FILE = "version.txt"
SOURCE_FILE = "source.py"
STASH_FILE = "stash.pkl"
PROTOCOL_VERSION_FILE = "protocol_version.txt"
REQUIREMENTS_FILE = "requirements.txt"
HIGHEST_SERIALIZATION_PROTOCOL_VERSION = 1
DEFAULT_SERIALIZATION_PROTOCOL_VERSION = 1
DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL


# ---------------------------------------------------------------------- atomic placement
def _siblings(path: str, kind: str) -> List[str]:
    parent, base = os.path.split(os.path.abspath(path))
    return glob.glob(os.path.join(parent, f".{glob.escape(base)}.{kind}-*"))


def _sibling(path: str, kind: str) -> str:
    parent, base = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{base}.{kind}-{uuid.uuid4().hex[:12]}")


def readable_path(path: str) -> str:
    """``path``, or the previous save an interrupted overwrite left beside it (read-only: a reader never
    moves or deletes anything a writer may be using)."""
    if os.path.exists(path):
        return path
    backups = _siblings(path, "old")
    if backups:
        logger.warning("%s is missing; reading the copy an interrupted save left beside it", path)
        return sorted(backups, key=os.path.getmtime)[-1]
    return path


def recover(path: str) -> None:
    """Undo what a crash in the middle of an overwrite left: restore the previous save if the new one
    never got into place, and drop temporary siblings."""
    backups = _siblings(path, "old")
    if not os.path.exists(path) and backups:
        os.rename(sorted(backups, key=os.path.getmtime)[-1], path)
        logger.warning("Restored %s from the copy an interrupted save left behind", path)
    for leftover in _siblings(path, "old") + _siblings(path, "tmp"):
        shutil.rmtree(leftover, ignore_errors=True) if os.path.isdir(leftover) else os.remove(leftover)


def _place(tmp: str, path: str, overwrite: bool) -> None:
    if os.path.exists(path):
        if not overwrite:
            raise SaveError(f"'{path}' already exists", hint="pass overwrite=True to replace it")
        backup = _sibling(path, "old")
        os.rename(path, backup)
        os.rename(tmp, path)
        shutil.rmtree(backup) if os.path.isdir(backup) else os.remove(backup)
    else:
        os.rename(tmp, path)


# ---------------------------------------------------------------------- saving
def _weights_safe(value: Any) -> bool:
    import torch
    if value is None or isinstance(value, (bool, int, float, str, bytes, torch.Tensor, torch.Size)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_weights_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _weights_safe(v) for k, v in value.items())
    return False


def _component_prefixes(state: State) -> List[str]:
    return [key for key, meta in state._metadata.items() if FLAMBE_CLASS_KEY in meta]


def _owner(key: str, prefixes: List[str]) -> str:
    """The deepest component prefix that ``key`` lives under."""
    best = ""
    for prefix in prefixes:
        if prefix and (key == prefix or key.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best


def _components_by_prefix(obj: Component) -> Dict[str, Component]:
    from flambe.compile.component import _component_tree
    return {prefix[:-1] if prefix else "": comp for comp, prefix, _ in _component_tree(obj, "")}


@functools.lru_cache(maxsize=256)
def _source_of(cls: type) -> str:
    target = getattr(cls, "_flambe_wrapped", cls)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return f"# source of {target.__module__}.{target.__qualname__} is not available\n"


def _requirements(extensions: Dict[str, str]) -> str:
    import importlib.metadata as md
    lines = []
    for dist in ("flambe", "torch"):
        try:
            lines.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    from flambe.compile.extensions import is_git_url, is_local_path
    for module, location in sorted(extensions.items()):
        lines.append(f"# extension {module}: {location}" if is_local_path(location) or is_git_url(location)
                     else location)
    return "\n".join(lines) + "\n"


def _write_component_dir(directory: str, comp: Component, prefix: str, state: State,
                         keys: List[str], meta_keys: List[str]) -> Dict[str, str]:
    import torch

    from flambe.compile.extensions import required_extensions
    from flambe.compile.registry import current_registry
    from flambe.compile.yaml import DumpContext, dump_with_extensions
    os.makedirs(directory, exist_ok=True)
    cut = len(prefix) + 1 if prefix else 0
    tensors: "OrderedDict[str, Any]" = OrderedDict()
    stashed: Dict[str, Any] = {}
    for key in keys:
        value = state[key]
        (tensors if _weights_safe(value) else stashed)[key[cut:]] = value
    metadata = {(k[cut:] if prefix else k) if k != prefix else "": state._metadata[k] for k in meta_keys}
    torch.save({"state": tensors, "metadata": metadata}, os.path.join(directory, STATE_FILE))
    schema = getattr(comp, "_flambe_schema", None)
    context = DumpContext(prefix=tuple(getattr(schema, "_path", ()) or ()))
    try:
        config = dump_with_extensions(comp, context=context)
    except FlambeError as err:
        raise SaveError(f"Cannot write the config of {type(comp).__name__}"
                        f"{f' at {prefix!r}' if prefix else ''}: {err.message}", hint=err.hint) from err
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as handle:
        handle.write(config)
    with open(os.path.join(directory, VERSION_FILE), "w") as handle:
        handle.write(f"{type(comp).__name__}:{comp._flambe_version}\n")
    with open(os.path.join(directory, SOURCE_FILE), "w", encoding="utf-8") as handle:
        handle.write(_source_of(type(comp)))
    with open(os.path.join(directory, PROTOCOL_VERSION_FILE), "w") as handle:
        handle.write(f"{DEFAULT_SERIALIZATION_PROTOCOL_VERSION}\n")
    if stashed or context.stash:
        from flambe.compile.schema import UnsavedValue
        config_stash = {}
        for key, value in context.stash.items():
            try:
                pickle.dumps(value, protocol=DEFAULT_PROTOCOL)
                config_stash[key] = value
            except Exception as exc:
                config_stash[key] = UnsavedValue(f"a {type(value).__name__} ({exc})")
        try:
            payload = pickle.dumps({"config": config_stash, "state": stashed}, protocol=DEFAULT_PROTOCOL)
        except Exception as exc:
            raise SaveError(f"Cannot save the state of {type(comp).__name__}: {exc}",
                            hint="registered attributes and custom state must be picklable") from exc
        with open(os.path.join(directory, STASH_FILE), "wb") as handle:
            handle.write(payload)
    return required_extensions(comp, current_registry()) if not prefix else {}


def save_state_tree(obj: Component, directory: str) -> None:
    """Write ``obj`` as a save directory tree at ``directory`` (not atomic; see :func:`save`)."""
    state = obj.get_state()
    prefixes = _component_prefixes(state)
    comps = _components_by_prefix(obj)
    keys_by: Dict[str, List[str]] = {p: [] for p in prefixes}
    for key in state:
        keys_by.setdefault(_owner(key, prefixes), []).append(key)
    meta_by: Dict[str, List[str]] = {p: [] for p in prefixes}
    for key in state._metadata:
        meta_by.setdefault(_owner(key, prefixes), []).append(key)
    extensions: Dict[str, str] = {}
    for prefix in prefixes:
        comp = comps.get(prefix)
        if comp is None:
            continue
        target = os.path.join(directory, *prefix.split(".")) if prefix else directory
        found = _write_component_dir(target, comp, prefix, state, keys_by.get(prefix, []), meta_by.get(prefix, []))
        extensions.update(found)
    with open(os.path.join(directory, REQUIREMENTS_FILE), "w") as handle:
        handle.write(_requirements(extensions))


def save(obj: Any, path: str, compress: bool = False, pickle_only: bool = False,
         overwrite: bool = False) -> None:
    """Save ``obj`` to ``path``: a directory tree (default), a ``.tar.gz`` of it (``compress``), or a
    single pickle file (``pickle_only``).

    The write is atomic: the new save appears whole or not at all, and the previous one (with
    ``overwrite=True``) stays until the new one is in place.

    Raises
    ------
    SaveError
        If ``path`` exists and ``overwrite`` is False, or part of the object cannot be saved.
    """
    import torch
    path = os.path.abspath(os.path.expanduser(path))
    recover(path)
    if os.path.exists(path) and not overwrite:
        raise SaveError(f"'{path}' already exists", hint="pass overwrite=True to replace it")
    if not pickle_only and not isinstance(obj, Component):
        raise SaveError(f"Only components can be saved as a directory tree, not {type(obj).__name__}",
                        hint="use pickle_only=True to pickle other objects")
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    try:
        if pickle_only:
            target = os.path.join(tmp, "obj.pkl")
            torch.save(obj, target, pickle_protocol=DEFAULT_PROTOCOL)
        else:
            tree = os.path.join(tmp, "tree")
            save_state_tree(obj, tree)
            target = tree
            if compress:
                target = os.path.join(tmp, "archive.tar.gz")
                name = base[:-7] if base.endswith(".tar.gz") else base
                with tarfile.open(target, "w:gz") as archive:
                    archive.add(tree, arcname=name)
        final_tmp = _sibling(path, "tmp")
        os.rename(target, final_tmp)
        _place(final_tmp, path, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- loading
def _read_protocol(directory: str) -> int:
    try:
        with open(os.path.join(directory, PROTOCOL_VERSION_FILE)) as handle:
            version = int(handle.read().strip() or DEFAULT_SERIALIZATION_PROTOCOL_VERSION)
    except FileNotFoundError:
        return DEFAULT_SERIALIZATION_PROTOCOL_VERSION
    except ValueError:
        raise LoadError(f"'{directory}' has an unreadable {PROTOCOL_VERSION_FILE}") from None
    if version > HIGHEST_SERIALIZATION_PROTOCOL_VERSION:
        raise LoadError(f"'{directory}' was saved with serialization protocol {version}; this flambe reads up "
                        f"to {HIGHEST_SERIALIZATION_PROTOCOL_VERSION}", hint="upgrade flambe to load it")
    return version


def _component_dirs(root: str) -> Iterator[Tuple[str, str]]:
    """``(prefix, directory)`` for the root and every sub-directory holding a saved component."""
    for current, dirs, files in os.walk(root):
        dirs.sort()
        if STATE_FILE in files:
            rel = os.path.relpath(current, root)
            yield ("" if rel == "." else rel.replace(os.sep, ".")), current


def load_state_from_file(path: str, map_location: Any = None) -> State:
    """Read the state of a save directory (all its sub-directories) as one flat :class:`State`."""
    import torch
    state = State()
    stash: Dict[str, Any] = {}
    for prefix, directory in _component_dirs(path):
        pre = prefix + "." if prefix else ""
        try:
            payload = torch.load(os.path.join(directory, STATE_FILE), map_location=map_location,
                                 weights_only=True, mmap=True)
        except Exception as exc:
            raise LoadError(f"Cannot read {os.path.join(directory, STATE_FILE)}: {exc}") from exc
        for key, value in payload.get("state", {}).items():
            state[pre + key] = value
        for key, meta in payload.get("metadata", {}).items():
            state._metadata[prefix if key == "" else pre + key] = meta
        stash_path = os.path.join(directory, STASH_FILE)
        if os.path.exists(stash_path):
            with open(stash_path, "rb") as handle:
                stashed = pickle.load(handle)
            for key, value in stashed.get("state", {}).items():
                state[pre + key] = value
            if not prefix:
                stash = stashed.get("config", {})
    state._flambe_config_stash = stash  # type: ignore[attr-defined]
    return state


class _SkipRandomInit:
    """Builds objects without random initialisation (the saved state replaces it anyway).

    Inside the block, ``torch.nn.init`` functions and in-place random fills are skipped; the tensors
    they would have filled are recorded. :meth:`all_overwritten` then checks that the loaded state
    covered every one of them, so a tensor the state does not hold is never left uninitialised.
    """

    def __init__(self) -> None:
        import torch
        from torch.overrides import TorchFunctionMode

        inplace = {getattr(torch.Tensor, n) for n in ("normal_", "uniform_", "bernoulli_", "exponential_",
                                                      "geometric_", "log_normal_", "cauchy_", "random_")}
        inits = {getattr(torch.nn.init, n) for n in dir(torch.nn.init)
                 if n.endswith("_") and not n.startswith("_") and n not in ("zeros_", "ones_", "constant_")}
        skipped = inplace | inits
        self.storages: Dict[int, Any] = {}
        storages = self.storages

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
                kwargs = kwargs or {}
                if func in skipped:
                    target = args[0] if args else kwargs.get("tensor")
                    if isinstance(target, torch.Tensor):
                        storages[target.untyped_storage().data_ptr()] = target
                        return target
                return func(*args, **kwargs)

        self.mode = Mode()

    def __enter__(self) -> "_SkipRandomInit":
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)

    def all_overwritten(self, obj: Any, state: State) -> bool:
        """Whether every skipped tensor belongs to a module tensor that ``state`` provided."""
        if not self.storages:
            return True
        import torch

        from flambe.compile.component import _component_tree
        covered = set()
        for comp, prefix, is_covered in _component_tree(obj, ""):
            if isinstance(comp, torch.nn.Module) and not is_covered:
                for key, tensor in comp.state_dict(keep_vars=True).items():
                    if prefix + key in state:
                        covered.add(tensor.untyped_storage().data_ptr())
        return set(self.storages) <= covered


def _build_and_load(directory: str, map_location: Any, auto_install: bool, overrides: Optional[Dict[str, Any]],
                    use_saved_config: bool, expected_class: Optional[type]) -> Any:

    from flambe.compile.schema import Builder, Schema, _apply_overrides
    from flambe.compile.yaml import load_file
    _read_protocol(directory)
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise LoadError(f"'{directory}' is not a flambe save: it has no {CONFIG_FILE}")
    state = load_state_from_file(directory, map_location=map_location)
    stash = state._flambe_config_stash  # type: ignore[attr-defined]

    def schema_for() -> Any:
        loaded = load_file(config_path, install_extensions=auto_install)
        schema = loaded.obj
        if not isinstance(schema, Schema):
            return schema
        if expected_class is not None and not issubclass(schema.component_subclass, expected_class):
            raise LoadError(f"'{directory}' holds a {schema.component_subclass.__name__}, "
                            f"not a {expected_class.__name__}")
        if overrides:
            if use_saved_config:
                _apply_overrides(schema, overrides)
            else:
                schema = Schema(schema.component_subclass, schema.factory_name, **overrides)
        elif not use_saved_config:
            schema = Schema(schema.component_subclass, schema.factory_name)
        return schema

    schema = schema_for()
    if not isinstance(schema, Schema):
        return schema
    # Fast path: skip random initialisation while building; the saved tensors are copied in after.
    obj = None
    try:
        with _SkipRandomInit() as skipped:
            candidate = Builder(schema, stash).build(schema)
        candidate.load_state(state)
        if skipped.all_overwritten(candidate, state):
            obj = candidate
    except FlambeError:
        raise
    except Exception:
        obj = None
    if obj is None:
        schema = schema_for()
        obj = Builder(schema, stash).build(schema)
        obj.load_state(state)
    if not isinstance(obj, Component):
        raise LoadError(f"'{directory}' did not build a component")
    check_version(type(obj), state._metadata.get("", {}).get(FLAMBE_VERSION_KEY))
    return obj


def load(path: str, map_location: Any = None, auto_install: bool = False,
         overrides: Optional[Dict[str, Any]] = None, use_saved_config: bool = True,
         expected_class: Optional[type] = None) -> Any:
    """Load an object saved by :func:`save` from a directory (any sub-directory of a save works too),
    a ``.tar.gz``, a single pickle file, an ``s3://bucket/prefix`` or an ``http(s)://`` URL.

    ``auto_install`` installs the extensions the saved config declares.

    Raises
    ------
    LoadError
        For a missing path, a save from a newer protocol, a class-version major mismatch, or a config
        that cannot be rebuilt.
    """
    import torch

    from flambe.compile.downloader import download_manager, is_url
    if not is_url(path):
        path = readable_path(os.path.abspath(os.path.expanduser(path)))
        if not os.path.exists(path):
            raise LoadError(f"'{path}' does not exist")
    with download_manager(path) as local:
        if os.path.isdir(local):
            return _build_and_load(local, map_location, auto_install, overrides, use_saved_config, expected_class)
        if tarfile.is_tarfile(local):
            with tempfile.TemporaryDirectory(prefix="flambe-load-") as tmp:
                with tarfile.open(local, "r:*") as archive:
                    archive.extractall(tmp, filter="data")
                entries = os.listdir(tmp)
                root = os.path.join(tmp, entries[0]) if len(entries) == 1 and \
                    os.path.isdir(os.path.join(tmp, entries[0])) else tmp
                return _build_and_load(root, map_location, auto_install, overrides, use_saved_config, expected_class)
        try:
            return torch.load(local, map_location=map_location, weights_only=False)
        except Exception as exc:
            raise LoadError(f"'{path}' is neither a flambe save directory, a .tar.gz of one, nor a pickle: {exc}") \
                from exc

