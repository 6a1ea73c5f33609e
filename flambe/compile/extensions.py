"""Extensions: pip-installable packages a config declares in its header document.

A header maps a top-level module name to where it comes from: a local path, a pip requirement, or a
git URL (cloned into ``~/.flambe/extensions/``). Without ``-i`` a missing extension is an error that
says how to install it; with ``-i`` it is installed with pip and the libraries pip changed are listed.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, Iterable, Optional, Set

from flambe.compile.errors import ConfigError, ExtensionError, Location

logger = logging.getLogger(__name__)

EXTENSIONS_DIR = os.path.join(os.path.expanduser("~"), ".flambe", "extensions")
WARN_LIMIT_MB = 100
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GIT_TREE_RE = re.compile(r"^(?P<repo>https?://[^/]+/[^/]+/[^/]+?)(?:\.git)?/tree/(?P<branch>[^/]+)(?:/(?P<sub>.+))?$")


def parse_extensions(header: Any, location: Optional[Location] = None,
                     base_dir: Optional[str] = None) -> Dict[str, str]:
    """Validate an extensions header: a mapping of module names to locations.

    Relative local paths (``./ext``, ``../ext``) are taken relative to ``base_dir`` (the config's folder).
    """
    if header is None:
        return {}
    if not isinstance(header, dict):
        raise ConfigError("The first YAML document must map extension module names to locations",
                          location=location, hint="e.g. 'my_ext: ./path/to/my_ext' then '---' then the object")
    out: Dict[str, str] = {}
    for module, where in header.items():
        if not isinstance(module, str) or not _MODULE_RE.match(module):
            raise ConfigError(f"Extension key '{module}' is not a module name", location=location,
                              hint="the key is the top-level module to import (not the package name)")
        if not isinstance(where, str) or not where.strip():
            raise ConfigError(f"Extension '{module}' needs a location (path, pip requirement or git URL)",
                              location=location)
        where = where.strip()
        if base_dir and where.startswith(("./", "../")):
            candidate = os.path.normpath(os.path.join(base_dir, where))
            if os.path.isdir(candidate):
                where = candidate
        out[module] = where
    return out


def is_installed_module(name: str) -> bool:
    """Whether a top-level module can be imported."""
    if name in sys.modules:
        return True
    importlib.invalidate_caches()
    return importlib.util.find_spec(name) is not None


def is_git_url(location: str) -> bool:
    """Git URLs: ``git+...``, ``ssh://``, ``git@host:``, ``...*.git`` and GitHub/GitLab/Bitbucket pages."""
    return (location.startswith(("git+", "ssh://", "git@", "git://"))
            or location.rstrip("/").endswith(".git")
            or bool(re.match(r"^https?://(www\.)?(github\.com|gitlab\.com|bitbucket\.org)/", location)))


def is_local_path(location: str) -> bool:
    """A location that names an existing directory."""
    return os.path.isdir(os.path.expanduser(location))


def _run(cmd: list, what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ExtensionError(f"Could not {what}: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ExtensionError(f"Could not {what} (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _folder_size_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 2 ** 20


def fetch_git_extension(module: str, url: str, container: Optional[str] = None) -> str:
    """Clone (first time) or pull (later) a git extension; return the local path to install."""
    container = container or EXTENSIONS_DIR
    os.makedirs(container, exist_ok=True)
    branch, sub = None, None
    match = _GIT_TREE_RE.match(url)
    if match:
        url, branch, sub = match.group("repo"), match.group("branch"), match.group("sub")
    url = url[4:] if url.startswith("git+") else url
    target = os.path.join(container, module)
    if os.path.isdir(os.path.join(target, ".git")):
        _run(["git", "-C", target, "fetch", "--quiet", "origin"], f"fetch extension '{module}' from {url}")
        ref = f"origin/{branch}" if branch else "@{upstream}"
        _run(["git", "-C", target, "reset", "--quiet", "--hard", ref], f"update extension '{module}'")
    else:
        if os.path.exists(target):
            shutil.rmtree(target)
        cmd = ["git", "clone", "--quiet"] + (["--branch", branch] if branch else []) + [url, target]
        _run(cmd, f"clone extension '{module}' from {url}")
    size = _folder_size_mb(container)
    if size > WARN_LIMIT_MB:
        logger.warning("%s holds %.0f MB of cloned extensions; delete what you no longer use", container, size)
    return os.path.join(target, sub) if sub else target


def _installed_versions() -> Dict[str, str]:
    return {(d.metadata["Name"] or "").lower(): d.version for d in importlib.metadata.distributions()}


def install_extensions(extensions: Dict[str, str], user_flag: bool = False) -> Dict[str, str]:
    """pip-install every extension; return what pip changed (``name -> 'old -> new'``)."""
    before = _installed_versions()
    for module, location in extensions.items():
        target = location
        if is_git_url(location):
            target = fetch_git_extension(module, location)
        elif is_local_path(location):
            target = os.path.abspath(os.path.expanduser(location))
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        cmd += (["--user"] if user_flag else []) + [target]
        logger.info("Installing extension '%s' from %s", module, location)
        _run(cmd, f"install extension '{module}' from {location}")
    after = _installed_versions()
    changes = {name: f"{before.get(name, '(new)')} -> {version}"
               for name, version in after.items() if before.get(name) != version}
    for name, change in sorted(changes.items()):
        logger.info("pip changed %s: %s", name, change)
    importlib.invalidate_caches()
    _module_distributions.cache_clear()
    return changes


def import_modules(modules: Iterable[str]) -> None:
    """Import extension modules, registering their classes under their module name."""
    from flambe.compile.registry import registration_context
    for module in modules:
        try:
            with registration_context(module):
                importlib.import_module(module)
        except ImportError as exc:
            raise ExtensionError(f"Extension '{module}' is installed but cannot be imported: {exc}") from exc


def ensure_extensions(extensions: Dict[str, str], install: bool = False, registry: Any = None) -> None:
    """Make every declared extension importable (installing it with ``install``) and import it.

    Raises
    ------
    ExtensionError
        When an extension is missing and ``install`` is False; the message names the module and the
        ``-i`` flag.
    """
    missing = {m: loc for m, loc in extensions.items() if not is_installed_module(m)}
    if missing and not install:
        module, location = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ExtensionError(f"Extension '{module}' (from {location}) is not installed{more}",
                             hint=f"run flambe with -i / --install-extensions to install it, "
                                  f"or install it yourself: pip install {location}")
    if missing:
        install_extensions(missing)
        still = [m for m in missing if not is_installed_module(m)]
        if still:
            raise ExtensionError(f"Installed the extension for '{still[0]}', but no module named "
                                 f"'{still[0]}' can be imported",
                                 hint="the key of an extension is its top-level module name, not its package name")
    import_modules(extensions)
    if registry is not None:
        registry.extensions.update(extensions)


def _classes_in(obj: Any) -> Set[type]:
    from flambe.compile.schema import Schema, _walk, config_of
    found: Set[type] = set()
    stack = [obj]
    seen: Set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        schema = item if isinstance(item, Schema) else config_of(item)
        if schema is None:
            continue
        found.add(schema.component_subclass)
        for node in _walk(schema.keywords):
            if isinstance(node, Schema) or hasattr(node, "_flambe_init_args") or hasattr(node, "_flambe_schema"):
                if node is not item:
                    stack.append(node)
    return found


def required_extensions(obj: Any, registry: Any) -> Dict[str, str]:
    """The extensions the classes inside ``obj`` come from, with where to get them.

    A declared location is used when one is known; otherwise the installed distribution that provides
    the module, pinned to its version.
    """
    out: Dict[str, str] = {}
    for cls in _classes_in(obj):
        module = registry.namespace_of(cls) or cls.__module__.split(".")[0]
        if module in ("flambe", "torch", "ray", "tune", "builtins", "__main__"):
            continue
        if module in out:
            continue
        location = registry.extensions.get(module)
        if location is None:
            location = _distribution_requirement(module)
        if location is not None:
            out[module] = location
    return out


@functools.lru_cache(maxsize=1)
def _module_distributions() -> Dict[str, list]:
    """Top-level module -> distributions providing it (scanning metadata is slow: done once, and again
    only after an install)."""
    try:
        return dict(importlib.metadata.packages_distributions())
    except Exception:  # pragma: no cover - broken metadata
        return {}


def _distribution_requirement(module: str) -> Optional[str]:
    dists = _module_distributions().get(module)
    if not dists:
        return None
    name = dists[0]
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name
