"""Schema: the not-yet-built blueprint of a component, and the recursive build that turns it into one."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import MutableMapping
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from flambe.compile.errors import CompilationError, FlambeError, Location, SearchOptionError
from flambe.compile.link import Link, LinkResolver
from flambe.compile.options import SearchOption

_UNBUILT = object()


class Schema(MutableMapping):
    """A component's class (or factory) and its keyword arguments, built on demand.

    Calling a schema builds the object: nested schemas first, in the order they are written, links
    resolved against the root. Calling the same schema again returns the same object, and a schema
    reached twice (a YAML anchor) builds one shared instance.

    Parameters
    ----------
    component_subclass : type
        The class to build.
    _flambe_custom_factory_name : str, optional
        A ``@registrable_factory`` classmethod to call instead of the constructor.
    **keywords
        The arguments, as written (they may hold schemas, links and search options).
    """

    def __init__(self, component_subclass: type, _flambe_custom_factory_name: Optional[str] = None,
                 **keywords: Any) -> None:
        self.component_subclass = component_subclass
        self.factory_name = _flambe_custom_factory_name
        self.keywords: Dict[str, Any] = dict(keywords)
        self.location: Optional[Location] = None
        self.key_locations: Dict[str, Location] = {}
        self.tag: str = _default_tag(component_subclass, _flambe_custom_factory_name)
        self.extensions: Dict[str, str] = {}
        self._built: Any = _UNBUILT
        self._compiled: Optional[Dict[str, Any]] = None
        self._path: Tuple[Any, ...] = ()

    # ------------------------------------------------------------------ mapping + dot access
    def __getitem__(self, key: str) -> Any:
        return self.keywords[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.keywords[key] = value

    def __delitem__(self, key: str) -> None:
        del self.keywords[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keywords)

    def __len__(self) -> int:
        return len(self.keywords)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("keywords", "component_subclass"):
            raise AttributeError(name)
        try:
            return self.keywords[name]
        except KeyError:
            raise AttributeError(f"Schema for '!{self.tag}' has no argument '{name}'") from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={self.keywords[k]!r}" for k in sorted(self.keywords))
        return f"Schema(!{self.tag}, {args})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Schema) and other.component_subclass is self.component_subclass \
            and other.factory_name == self.factory_name and other.keywords == self.keywords

    __hash__ = object.__hash__  # identity: a schema is one node of one config

    def __getstate__(self) -> dict:
        # Built objects never travel with a pickled blueprint.
        return {k: v for k, v in self.__dict__.items() if k not in ("_built", "_compiled")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._built = _UNBUILT
        self._compiled = None

    # ------------------------------------------------------------------ building
    @property
    def is_built(self) -> bool:
        """Whether this schema has been built."""
        return self._built is not _UNBUILT

    @property
    def built(self) -> Any:
        """The object this schema built."""
        if self._built is _UNBUILT:
            raise CompilationError(f"'!{self.tag}' has not been built", location=self.location)
        return self._built

    @property
    def compiled_kwargs(self) -> Optional[Dict[str, Any]]:
        """The keyword arguments as they were passed to the constructor (after building)."""
        return self._compiled

    @property
    def factory(self) -> Callable[..., Any]:
        """What building calls: the factory classmethod or the class itself."""
        if self.factory_name:
            return getattr(self.component_subclass, self.factory_name)
        return self.component_subclass

    def __call__(self, stash: Optional[Dict[str, Any]] = None, **keywords: Any) -> Any:
        """Build (once) and return the object.

        ``keywords`` override arguments before the first build (deep overrides use nested dicts).
        """
        if self.is_built and not keywords:
            return self._built
        if keywords:
            _apply_overrides(self, keywords)
        return Builder(root=self, stash=stash).build(self)

    def contains(self, target: Any) -> bool:
        """Whether ``target`` (a schema, link or value) appears anywhere inside this schema."""
        return any(node is target for node in _walk(self.keywords))

    def set_param(self, path: Sequence[Any], value: Any) -> None:
        """Replace the value at ``path`` (keys walked through nested schemas, dicts and lists)."""
        node: Any = self
        for key in path[:-1]:
            node = node.keywords[key] if isinstance(node, Schema) else node[key]
        (node.keywords if isinstance(node, Schema) else node)[path[-1]] = value


def _default_tag(cls: type, factory: Optional[str]) -> str:
    from flambe.compile.registry import current_registry
    try:
        return current_registry().default_tag(cls, factory)
    except FlambeError:
        return cls.__name__ + (f".{factory}" if factory else "")


def _apply_overrides(schema: Schema, overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        current = schema.keywords.get(key)
        if isinstance(current, Schema) and isinstance(value, Mapping) and not isinstance(value, Schema):
            _apply_overrides(current, value)
        else:
            schema.keywords[key] = value


def _walk(value: Any) -> Iterator[Any]:
    """Yield every node under ``value`` (schemas, links, options, containers, leaves)."""
    stack = [value]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Schema):
            stack.extend(reversed(list(node.keywords.values())))
        elif isinstance(node, Mapping):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        elif isinstance(node, SearchOption) and hasattr(node, "options"):
            stack.extend(reversed(node.options))


def config_of(obj: Any) -> Optional[Schema]:
    """The schema an object was built from, or one describing its constructor arguments."""
    schema = getattr(obj, "_flambe_schema", None)
    if isinstance(schema, Schema):
        return schema
    args = getattr(obj, "_flambe_init_args", None)
    if args is None:
        return None
    config = Schema(type(obj), **args)
    config._built = obj
    config._compiled = dict(args)
    return config


# ---------------------------------------------------------------------- argument checks
_SIGNATURES: Dict[Any, Optional[inspect.Signature]] = {}


def signature_of(fn: Callable[..., Any]) -> Optional[inspect.Signature]:
    """The signature used to check arguments (cached; None when it cannot be inspected)."""
    key = fn.__func__ if inspect.ismethod(fn) else fn
    if key not in _SIGNATURES:
        try:
            target = fn if not isinstance(fn, type) else fn.__init__
            sig = inspect.signature(target)
            if isinstance(fn, type):
                params = list(sig.parameters.values())[1:]  # drop self
                sig = sig.replace(parameters=params)
        except (TypeError, ValueError):
            sig = None
        _SIGNATURES[key] = sig
    return _SIGNATURES[key]


def check_arguments(schema: Schema, path: Sequence[Any] = ()) -> None:
    """Check the schema's argument names against its constructor or factory signature.

    Raises
    ------
    CompilationError
        For an unknown argument (with a suggestion) or a missing required one.
    """
    sig = signature_of(schema.factory)
    if sig is None:
        return
    params = sig.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if not accepts_any:
        for key in schema.keywords:
            if key not in named:
                close = difflib.get_close_matches(str(key), named, n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"'!{schema.tag}' accepts: {', '.join(named) or '(no arguments)'}"
                raise CompilationError(f"'!{schema.tag}' has no argument '{key}'",
                                       location=schema.key_locations.get(key, schema.location),
                                       key_path=list(path) + [key], hint=hint)
    missing = [n for n in named if params[n].default is inspect.Parameter.empty and n not in schema.keywords]
    if missing:
        raise CompilationError(
            f"'!{schema.tag}' is missing required argument{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}",
            location=schema.location, key_path=list(path) or None,
            hint=f"add {', '.join(f'{m}: ...' for m in missing)} under '!{schema.tag}'")


def prepare(schema: Schema, path: Sequence[Any] = ()) -> None:
    """Let the class add its default arguments (``setup_dependencies``), then check them all."""
    hook = getattr(schema.component_subclass, "setup_dependencies", None)
    if hook is not None:
        hook(schema.keywords)
    check_arguments(schema, path)


def check_tree(value: Any, path: Sequence[Any] = ()) -> None:
    """Check the arguments of every schema under ``value`` before anything is built."""
    if isinstance(value, Schema):
        prepare(value, path)
        items: Any = value.keywords.items()
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, SearchOption) and hasattr(value, "options"):
        items = enumerate(value.options)
    else:
        return
    for key, child in items:
        check_tree(child, list(path) + [key])


def fill_defaults(kwargs: Dict[str, Any], fn: Callable[..., Any]) -> Dict[str, Any]:
    """``kwargs`` plus every parameter of ``fn``'s signature it lacks that has a default."""
    sig = signature_of(fn)
    if sig is None:
        return dict(kwargs)
    out = dict(kwargs)
    for name, param in sig.parameters.items():
        if name not in out and param.default is not inspect.Parameter.empty and param.kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            out[name] = param.default
    return out


# ---------------------------------------------------------------------- the builder
class Builder:
    """Builds a schema tree: arguments in the order they are written, links against ``root``.

    Parameters
    ----------
    root : Schema or Mapping
        Where the first key of each link is looked up (a schema's own arguments, or a mapping of
        stage and resource names).
    stash : dict, optional
        Values that a saved config refers to by id (``!stash id``).
    """

    def __init__(self, root: Any, stash: Optional[Dict[str, Any]] = None) -> None:
        self.stash = stash or {}
        self._building: List[Schema] = []
        mapping = root.keywords if isinstance(root, Schema) else root
        self.root_schema = root if isinstance(root, Schema) else None
        self.resolver = LinkResolver(mapping, is_ancestor=lambda s: any(s is b for b in self._building))

    def build(self, schema: Schema, path: Tuple[Any, ...] = ()) -> Any:
        """Build ``schema`` (and what it contains) once; return the object."""
        if schema.is_built:
            return schema._built
        if any(schema is b for b in self._building):
            raise CompilationError(f"'!{schema.tag}' contains itself (a cycle through a YAML anchor)",
                                   location=schema.location)
        cls = schema.component_subclass
        prepare(schema, path)
        self._building.append(schema)
        try:
            kwargs = {key: self.value(val, path + (key,), schema.key_locations.get(key, schema.location))
                      for key, val in schema.keywords.items()}
            precompile = getattr(cls, "precompile", None)
            if precompile is not None:
                precompile(**kwargs)
            try:
                obj = schema.factory(**kwargs)
            except FlambeError:
                raise
            except Exception as exc:
                raise CompilationError(f"building '!{schema.tag}' failed: {type(exc).__name__}: {exc}",
                                       location=schema.location, key_path=list(path) or None) from exc
        finally:
            self._building.pop()
        try:
            object.__setattr__(obj, "_flambe_schema", schema)
        except (AttributeError, TypeError):
            pass
        schema._built = obj
        schema._compiled = kwargs
        schema._path = path
        return obj

    def value(self, value: Any, path: Tuple[Any, ...], location: Optional[Location]) -> Any:
        """Compile one argument value."""
        if isinstance(value, Schema):
            return self.build(value, path)
        if isinstance(value, Link):
            return self.resolver.resolve(value)
        if isinstance(value, SearchOption):
            raise SearchOptionError(
                f"search option {type(value).__name__} cannot be built directly",
                location=value.location or location, key_path=list(path),
                hint="search options are expanded into variants by an !Experiment; "
                     "use a single value to build this config on its own")
        if isinstance(value, StashRef):
            return value.resolve(self.stash, location)
        if isinstance(value, dict):
            compiled = {k: self.value(v, path + (k,), location) for k, v in value.items()}
            return compiled if type(value) is dict else type(value)(compiled)
        if isinstance(value, list):
            return [self.value(v, path + (i,), location) for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return tuple(self.value(v, path + (i,), location) for i, v in enumerate(value))
        return value


class StashRef:
    """A value a saved config could not write as YAML; it lives in ``stash.pkl`` under ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def resolve(self, stash: Mapping[str, Any], location: Optional[Location] = None) -> Any:
        from flambe.compile.errors import LoadError
        if self.key not in stash:
            raise LoadError(f"The saved config refers to stashed value '{self.key}', which is missing",
                            location=location, hint="load the save directory this config came from")
        value = stash[self.key]
        if isinstance(value, UnsavedValue):
            raise LoadError(f"The saved config needs a value that could not be saved: {value.description}",
                            location=location,
                            hint="load the parent save directory, which holds the object this value came from")
        return value

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, StashRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"StashRef({self.key!r})"


class UnsavedValue:
    """Placeholder stored in a stash for a value that could not be pickled."""

    def __init__(self, description: str) -> None:
        self.description = description
