"""The tag registry: which ``!Tag`` builds which class.

A :class:`Registry` is a plain object. The process has a default one that flambe's own classes, user
classes and extensions register into; tests (or tools) can make their own and activate it with
:func:`use_registry`, so nothing here is hidden module-level loader state.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from flambe.compile.catalog import TAG_MODULES
from flambe.compile.errors import RegistrationError, TagError

# Namespaces whose classes are resolved on first use, so importing flambe never imports torch or ray.
# Values are "module:function" strings; the function maps a class name to a registered class or None,
# and has a ``names()`` attribute-function listing what it could resolve (for suggestions).
LAZY_NAMESPACES: Dict[str, str] = {
    "torch": "flambe.compile.external:resolve_torch",
    "ray": "flambe.compile.external:resolve_ray",
    "tune": "flambe.compile.external:resolve_ray",
}

# flambe modules whose classes are tags of every config (``!Builder``), though nothing imports them first.
# They are imported into the default registry before the first tag lookup (see load_builtin_modules), so
# they must stay cheap to import: no torch or ray at module level.
BUILTIN_MODULES: Tuple[str, ...] = ("flambe.cluster", "flambe.experiment", "flambe.export")

# Top-level modules whose classes get bare tags (``!Trainer``) with priority over anyone else's.
PRIMARY_MODULES = ("flambe",)
# Top-level modules whose classes get bare tags but no namespace (scripts, notebooks).
UNNAMESPACED_MODULES = ("__main__", "builtins")


@dataclass(frozen=True)
class Entry:
    """What one tag means: the class, and the factory to call instead of ``__init__`` (if any)."""

    cls: type
    tag: str
    factory: Optional[str] = None


def _same_class(a: type, b: type) -> bool:
    """True for the same class, or a re-definition of it (module reload, re-run notebook cell)."""
    return a is b or (a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)


def registered_factories(cls: type) -> Set[str]:
    """Names of the ``@registrable_factory`` methods of ``cls``, inherited ones included."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        names.update(klass.__dict__.get("_flambe_factories", ()))
    return names


class Registry:
    """Maps YAML tags to classes, and classes back to their default tag.

    Parameters
    ----------
    parent : Registry, optional
        A registry consulted for tags this one does not know (for example the default registry, so a
        test registry still knows flambe's own classes).
    """

    def __init__(self, parent: Optional["Registry"] = None) -> None:
        self.parent = parent
        self._tags: Dict[str, Entry] = {}
        self._bare: Dict[str, List[Entry]] = {}
        self._default_tag: Dict[type, str] = {}
        self._namespaces: Dict[type, Optional[str]] = {}
        #: extension module name -> location it was declared with (path, requirement or URL)
        self.extensions: Dict[str, str] = {}

    # ------------------------------------------------------------------ registration
    def register(self, cls: type, tag: Optional[str] = None, namespace: Optional[str] = None) -> str:
        """Register ``cls`` under ``tag`` (default: its class name) and return the full tag.

        The tag that was registered last becomes the class's default tag for dumping, so stacked
        ``@alias`` decorators make the top-most alias the default.
        """
        tag = tag or cls.__name__
        if cls in self._namespaces and namespace is None:
            namespace = self._namespaces[cls]
        else:
            namespace = namespace if namespace is not None else class_namespace(cls)
            self._namespaces[cls] = namespace
        full = f"{namespace}.{tag}" if namespace else tag
        entry = Entry(cls, full)
        top = cls.__module__.split(".")[0]
        if namespace is None and top in PRIMARY_MODULES:
            self._put(full, entry)
        elif namespace is None:
            self._put_bare(tag, entry)
        else:
            self._put(full, entry)
            if namespace not in LAZY_NAMESPACES:
                self._put_bare(tag, entry)
        self._default_tag[cls] = full
        return full

    def _put(self, tag: str, entry: Entry) -> None:
        old = self._tags.get(tag)
        if old is not None and not _same_class(old.cls, entry.cls):
            raise RegistrationError(
                f"Tag '!{tag}' is already registered by {old.cls.__module__}.{old.cls.__qualname__}; "
                f"cannot register {entry.cls.__module__}.{entry.cls.__qualname__} under it too",
                hint="give one of the classes another tag with @alias or tag_override=...")
        if old is not None:
            self._forget(old.cls)
        self._tags[tag] = entry

    def _put_bare(self, tag: str, entry: Entry) -> None:
        entries = [e for e in self._bare.get(tag, []) if not _same_class(e.cls, entry.cls)]
        entries.append(entry)
        self._bare[tag] = entries

    def _forget(self, cls: type) -> None:
        self._default_tag.pop(cls, None)
        self._namespaces.pop(cls, None)

    # ------------------------------------------------------------------ lookup
    def lookup(self, tag: str) -> Entry:
        """Return the entry for ``tag`` (``Class``, ``ns.Class``, ``Class.factory``, ``ns.Class.factory``).

        Raises
        ------
        TagError
            If no class answers to the tag; the message suggests close matches.
        """
        load_builtin_modules()
        entry = self._find(tag)
        if entry is None:
            raise self._unknown(tag)
        return entry

    def _find(self, tag: str) -> Optional[Entry]:
        entry = self._find_direct(tag)
        if entry is not None:
            return entry
        # ``Class.factory`` / ``ns.Class.factory``
        if "." in tag:
            base, factory = tag.rsplit(".", 1)
            base_entry = self._find_direct(base)
            if base_entry is not None and factory in registered_factories(base_entry.cls):
                return Entry(base_entry.cls, tag, factory)
        return None

    def _find_direct(self, tag: str) -> Optional[Entry]:
        if tag in TAG_MODULES:
            import_catalog_module(TAG_MODULES[tag])
        registry: Optional[Registry] = self
        while registry is not None:
            entry = registry._tags.get(tag)
            if entry is not None:
                return entry
            registry = registry.parent
        bare = self._bare_candidates(tag)
        if len(bare) == 1:
            return bare[0]
        if len(bare) > 1:
            options = ", ".join(sorted("!" + e.tag for e in bare))
            raise TagError(f"Tag '!{tag}' is ambiguous: it could mean {options}",
                           hint="use the namespaced tag of the class you mean")
        namespace, _, name = tag.partition(".")
        if name and "." not in name and namespace in LAZY_NAMESPACES:
            cls = _resolver(namespace)(name)
            if cls is not None:
                return Entry(cls, tag)
        return None

    def _bare_candidates(self, tag: str) -> List[Entry]:
        seen: Dict[type, Entry] = {}
        registry: Optional[Registry] = self
        while registry is not None:
            for entry in registry._bare.get(tag, []):
                if not any(_same_class(entry.cls, other) for other in seen):
                    seen[entry.cls] = entry
            registry = registry.parent
        return list(seen.values())

    def _unknown(self, tag: str) -> TagError:
        candidates = set(self.all_tags())
        namespace, _, name = tag.partition(".")
        if namespace in LAZY_NAMESPACES:
            try:
                candidates.update(f"{namespace}.{n}" for n in _resolver(namespace).names())
            except ImportError:
                pass
        close = difflib.get_close_matches(tag, sorted(candidates), n=3, cutoff=0.6)
        if not close:
            lowered = {c.lower(): c for c in candidates}
            close = [lowered[c] for c in difflib.get_close_matches(tag.lower(), list(lowered), n=3)]
        hint = ("did you mean " + " or ".join(f"'!{c}'" for c in close) + "?") if close else (
            "register the class (subclass Component or Registrable), or declare the extension "
            "that provides it at the top of the config")
        if namespace and name and namespace not in LAZY_NAMESPACES and not close:
            hint = (f"'{namespace}' is not a loaded extension; declare it at the top of the config "
                    f"('{namespace}: <path or requirement>' then '---') and run with -i to install it")
        return TagError(f"Unknown tag '!{tag}'", hint=hint)

    def all_tags(self) -> Iterator[str]:
        """Every tag this registry (and its parents) can resolve, flambe's catalogued ones included."""
        yield from TAG_MODULES
        registry: Optional[Registry] = self
        while registry is not None:
            yield from registry._tags
            yield from registry._bare
            registry = registry.parent

    def default_tag(self, cls: type, factory: Optional[str] = None) -> str:
        """The tag ``cls`` is dumped with (its top-most alias, namespaced if it has a namespace)."""
        registry: Optional[Registry] = self
        tag = None
        while registry is not None and tag is None:
            tag = registry._default_tag.get(cls)
            registry = registry.parent
        if tag is None:
            raise RegistrationError(f"{cls.__module__}.{cls.__qualname__} is not registered",
                                    hint="subclass flambe.compile.Component or call register(cls, tag)")
        return f"{tag}.{factory}" if factory else tag

    def namespace_of(self, cls: type) -> Optional[str]:
        """The namespace ``cls`` was registered with (None for flambe's own and unnamespaced classes)."""
        registry: Optional[Registry] = self
        while registry is not None:
            if cls in registry._namespaces:
                return registry._namespaces[cls]
            registry = registry.parent
        return None


def _resolver(namespace: str) -> Callable[..., Any]:
    module_name, _, func = LAZY_NAMESPACES[namespace].partition(":")
    return getattr(importlib.import_module(module_name), func)


# ---------------------------------------------------------------------- the active registry
DEFAULT_REGISTRY = Registry()
_active: contextvars.ContextVar[Registry] = contextvars.ContextVar("flambe_registry", default=DEFAULT_REGISTRY)
_namespace_ctx: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("flambe_namespace", default=None)


_builtins_lock = threading.RLock()
_builtins_state = "unloaded"  # -> "loading" -> "loaded"


def load_builtin_modules() -> None:
    """Import :data:`BUILTIN_MODULES` once, registering their classes in the default registry.

    Called before every tag lookup (it does nothing after the first), so ``!Builder`` resolves even when
    the program never imported :mod:`flambe.export`. The imports always register into the default
    registry, even when a test registry is active. Other threads wait until the imports are done; a
    lookup made by the imports themselves does not recurse.
    """
    global _builtins_state
    if _builtins_state == "loaded":
        return
    with _builtins_lock:
        if _builtins_state != "unloaded":
            return
        _builtins_state = "loading"
        registry_token = _active.set(DEFAULT_REGISTRY)
        namespace_token = _namespace_ctx.set(None)
        try:
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            _builtins_state = "loaded"
        finally:
            if _builtins_state != "loaded":
                _builtins_state = "unloaded"
            _namespace_ctx.reset(namespace_token)
            _active.reset(registry_token)


def import_catalog_module(module: str) -> None:
    """Import one of flambe's component packages (see :mod:`flambe.compile.catalog`) into the default
    registry, whatever registry or registration namespace is active."""
    if module in sys.modules:
        return
    registry_token = _active.set(DEFAULT_REGISTRY)
    namespace_token = _namespace_ctx.set(None)
    try:
        importlib.import_module(module)
    finally:
        _namespace_ctx.reset(namespace_token)
        _active.reset(registry_token)


def current_registry() -> Registry:
    """The registry that new classes register into and that YAML loads from by default."""
    return _active.get()


@contextlib.contextmanager
def use_registry(registry: Optional[Registry] = None) -> Iterator[Registry]:
    """Activate ``registry`` (default: a new one backed by the default registry) inside the block."""
    registry = registry if registry is not None else Registry(parent=DEFAULT_REGISTRY)
    token = _active.set(registry)
    try:
        yield registry
    finally:
        _active.reset(token)


@contextlib.contextmanager
def registration_context(namespace: str) -> Iterator[None]:
    """Register every class defined inside the block (or decorated function) under ``namespace``."""
    token = _namespace_ctx.set(namespace)
    try:
        yield
    finally:
        _namespace_ctx.reset(token)


def class_namespace(cls: type) -> Optional[str]:
    """The namespace a class gets: the active registration context, else its top-level module.

    flambe's own classes and classes defined in ``__main__`` have no namespace.
    """
    ctx = _namespace_ctx.get()
    if ctx:
        return ctx
    top = cls.__module__.split(".")[0]
    if top in PRIMARY_MODULES or top in UNNAMESPACED_MODULES:
        return None
    return top


# ---------------------------------------------------------------------- public helpers
class Registrable:
    """Base of every class that can be loaded from and dumped to YAML.

    Subclasses register themselves under their class name when they are defined. Class keywords:
    ``should_register=False`` skips registration, ``tag_override`` and ``tag_namespace`` change the
    tag. Subclasses that are not Components implement :meth:`from_yaml` and :meth:`to_yaml`.
    """

    def __init_subclass__(cls, should_register: bool = True, tag_override: Optional[str] = None,
                          tag_namespace: Optional[str] = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if should_register:
            current_registry().register(cls, tag_override, tag_namespace)

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> Any:
        """Build the object (or its Schema) from a ruamel.yaml node."""
        raise NotImplementedError(f"{cls.__name__} must implement from_yaml to be loaded from YAML")

    @classmethod
    def to_yaml(cls, representer: Any, node: Any, tag: str) -> Any:
        """Represent ``node`` (an instance) for ruamel.yaml under ``tag``."""
        raise NotImplementedError(f"{cls.__name__} must implement to_yaml to be dumped to YAML")


def alias(tag: str, tag_namespace: Optional[str] = None) -> Callable[[type], type]:
    """Class decorator adding ``tag`` as another tag of the class; the top-most alias is dumped."""
    def decorate(cls: type) -> type:
        current_registry().register(cls, tag, tag_namespace)
        return cls
    return decorate


def register(cls: type, tag: str, namespace: Optional[str] = None) -> type:
    """Register a class that is not a :class:`Registrable` under ``tag``.

    From YAML, a mapping is passed as keyword arguments (a sequence as positional arguments, a scalar
    as the only argument), unless the class defines its own ``from_yaml``/``to_yaml`` classmethods.
    """
    current_registry().register(cls, tag, namespace)
    return cls


class registrable_factory:
    """Mark a classmethod as a YAML factory: ``!Class.method`` calls it instead of ``__init__``.

    Use it above ``@classmethod``::

        @registrable_factory
        @classmethod
        def from_path(cls, path): ...
    """

    def __init__(self, method: Any) -> None:
        self.method = method if isinstance(method, classmethod) else classmethod(method)

    def __set_name__(self, owner: type, name: str) -> None:
        own = set(owner.__dict__.get("_flambe_factories", ()))
        own.add(name)
        owner._flambe_factories = frozenset(own)  # type: ignore[attr-defined]
        setattr(owner, name, self.method)

    def __get__(self, instance: Any, owner: Optional[type] = None) -> Any:
        return self.method.__get__(instance, owner)
