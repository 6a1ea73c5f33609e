"""Component: a registrable class built from YAML through a Schema, with recursive, hookable state."""

from __future__ import annotations

import inspect
import warnings
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

from flambe.compile.errors import LoadError
from flambe.compile.registry import Registrable, registrable_factory
from flambe.compile.schema import Schema, signature_of

STATE_DICT_DELIMITER = "."
FLAMBE_CLASS_KEY = "_flambe_class"
FLAMBE_VERSION_KEY = "_flambe_version"
FLAMBE_DIRECTORIES_KEY = "_flambe_directories"
FLAMBE_ATTRS_KEY = "_flambe_registered_attrs"


class State(OrderedDict):
    """A flat state dict (``'.'``-joined keys) with per-component metadata in ``_metadata``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metadata: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()

    def __reduce__(self):
        return (_rebuild_state, (list(self.items()), dict(self._metadata)))


def _rebuild_state(items: List[Tuple[str, Any]], metadata: Dict[str, Any]) -> State:
    state = State(items)
    state._metadata.update(metadata)
    return state


def parse_version(version: str) -> Tuple[int, int, int]:
    """``'1.2.3'`` -> ``(1, 2, 3)``."""
    try:
        major, minor, patch = (int(p) for p in str(version).strip().split("."))
    except ValueError:
        raise LoadError(f"Invalid class version '{version}'", hint="versions look like '1.2.3'") from None
    return major, minor, patch


def check_version(cls: type, saved: Optional[str], where: str = "") -> None:
    """Compare a saved class version with the class's ``_flambe_version``.

    ``0.0.0`` on both sides means versioning is off. A major mismatch raises :class:`LoadError`; a
    minor mismatch warns.
    """
    current = getattr(cls, "_flambe_version", "0.0.0")
    saved = saved or "0.0.0"
    if current == "0.0.0" and saved == "0.0.0":
        return
    cur, old = parse_version(current), parse_version(saved)
    name = cls.__name__
    if cur[0] != old[0]:
        raise LoadError(f"{name} was saved at version {saved} but the installed class is {current}{where}",
                        hint="major versions differ: load it with the version of the code that saved it, "
                             "or convert the saved state")
    if cur[1] != old[1]:
        warnings.warn(f"{name} was saved at version {saved}; the installed class is {current}{where}",
                      stacklevel=3)


def _is_module(obj: Any) -> bool:
    try:
        import sys
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)
    except Exception:  # pragma: no cover - torch half-imported
        return False


class Component(Registrable, should_register=False):
    """The base of every buildable flambe object.

    Subclass it (before ``torch.nn.Module``, or use :class:`flambe.nn.Module`) and it gets a
    ``!ClassName`` tag. A component may do work in :meth:`run` and report :meth:`metric`; its state
    (tensors of any ``nn.Module`` inside it, registered attributes, custom ``_state``) is collected
    recursively by :meth:`get_state` and restored by :meth:`load_state`.
    """

    _flambe_version = "0.0.0"
    _flambe_registered_attrs: Tuple[str, ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "Component":
        obj = super().__new__(cls)
        # Record how the object was constructed, so one built in plain Python dumps and saves exactly
        # like one built from YAML.
        object.__setattr__(obj, "_flambe_init_args", _bind_arguments(cls, args, kwargs))
        return obj

    # ------------------------------------------------------------------ the run contract
    def run(self) -> bool:
        """Do one step of work; return True while there is more to do.

        A component with nothing to run (a model, a dataset) does nothing and returns False.
        """
        return False

    def metric(self) -> Optional[float]:
        """The value schedulers, search and ``reduce`` compare (None: nothing to compare)."""
        return None

    # ------------------------------------------------------------------ state
    def register_attrs(self, *names: str) -> None:
        """Save and restore these attributes with the state (call at the end of ``__init__``)."""
        for name in names:
            if not hasattr(self, name):
                raise AttributeError(f"{type(self).__name__} has no attribute '{name}' to register")
        current = tuple(self._flambe_registered_attrs)
        object.__setattr__(self, "_flambe_registered_attrs", current + tuple(n for n in names if n not in current))

    def _state(self, state_dict: State, prefix: str, local_metadata: Dict[str, Any]) -> State:
        """Hook: add custom entries (keys start with ``prefix``) to the state; return it."""
        return state_dict

    def _load_state(self, state_dict: State, prefix: str, local_metadata: Dict[str, Any],
                    strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                    error_msgs: List[str]) -> None:
        """Hook: restore what :meth:`_state` added."""

    def get_state(self, destination: Optional[State] = None, prefix: str = "",
                  keep_vars: bool = False) -> State:
        """The state of this component and everything inside it, as one flat :class:`State`."""
        state = destination if destination is not None else State()
        if not hasattr(state, "_metadata"):
            state._metadata = OrderedDict()  # type: ignore[attr-defined]
        for comp, comp_prefix, covered in _component_tree(self, prefix):
            if _is_module(comp) and not covered:
                import torch
                torch.nn.Module.state_dict(comp, destination=state, prefix=comp_prefix, keep_vars=keep_vars)
            comp._add_own_state(state, comp_prefix, keep_vars)
        return state

    def _add_own_state(self, state: State, prefix: str, keep_vars: bool) -> None:
        meta = state._metadata.setdefault(prefix[:-1] if prefix else "", {})
        meta[FLAMBE_CLASS_KEY] = type(self).__name__
        meta[FLAMBE_VERSION_KEY] = self._flambe_version
        meta[FLAMBE_DIRECTORIES_KEY] = [name for name, child in _children(self) if isinstance(child, Component)]
        meta[FLAMBE_ATTRS_KEY] = list(self._flambe_registered_attrs)
        for name in self._flambe_registered_attrs:
            state[prefix + name] = getattr(self, name)
        if not _is_module(self):
            for name, child in _plain_modules(self):
                child.state_dict(destination=state, prefix=f"{prefix}{name}.", keep_vars=keep_vars)
        self._state(state, prefix, meta)

    def load_state(self, state_dict: State, strict: bool = False) -> None:
        """Restore a state produced by :meth:`get_state` (keys relative to this component).

        Raises
        ------
        LoadError
            On a class-version major mismatch, or (``strict``) on missing or unexpected tensors.
        """
        metadata = getattr(state_dict, "_metadata", None) or {}
        missing: List[str] = []
        unexpected: List[str] = []
        errors: List[str] = []
        tree = list(_component_tree(self, ""))
        for comp, prefix, _ in tree:
            saved = metadata.get(prefix[:-1] if prefix else "", {}).get(FLAMBE_VERSION_KEY)
            check_version(type(comp), saved, f" (at '{prefix[:-1]}')" if prefix else "")
        for comp, prefix, covered in tree:
            if _is_module(comp) and not covered:
                _load_module_tensors(comp, state_dict, metadata, prefix, missing, unexpected)
            if not _is_module(comp):
                for name, child in _plain_modules(comp):
                    _load_module_tensors(child, state_dict, metadata, f"{prefix}{name}.", missing, unexpected)
            for name in comp._flambe_registered_attrs:
                if prefix + name in state_dict:
                    setattr(comp, name, state_dict[prefix + name])
                else:
                    missing.append(prefix + name)
            meta = metadata.get(prefix[:-1] if prefix else "", {})
            comp._load_state(state_dict, prefix, meta, strict, missing, unexpected, errors)
        if strict:
            known = set(self.get_state(keep_vars=True).keys())
            unexpected.extend(k for k in state_dict if k not in known and k not in unexpected)
        if strict and (missing or unexpected or errors):
            problems = ([f"missing keys {missing}"] if missing else []) + \
                ([f"unexpected keys {unexpected}"] if unexpected else []) + errors
            raise LoadError("State does not match the object: " + "; ".join(problems))

    # ------------------------------------------------------------------ YAML
    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> Schema:
        """Component tags load as a :class:`Schema` (delayed initialization)."""
        from flambe.compile.yaml import construct_arguments, node_location, written_tag
        kwargs, key_locations = construct_arguments(constructor, node, cls)
        schema = Schema(cls, factory_name, **kwargs)
        schema.tag = written_tag(node)
        schema.location = node_location(constructor, node)
        schema.key_locations = key_locations
        return schema

    @classmethod
    def to_yaml(cls, representer: Any, node: Any, tag: str) -> Any:
        from flambe.compile.yaml import represent_config
        return represent_config(representer, node, tag)

    @classmethod
    def setup_dependencies(cls, kwargs: Dict[str, Any]) -> None:
        """Hook: add default arguments (often links) to the raw keyword arguments before building."""

    @classmethod
    def precompile(cls, **kwargs: Any) -> None:
        """Hook: called with the built arguments right before the constructor."""

    # ------------------------------------------------------------------ saving
    def save(self, path: str, **kwargs: Any) -> None:
        """Save this object to ``path`` (see :func:`flambe.compile.serialization.save`)."""
        from flambe.compile.serialization import save
        save(self, path, **kwargs)

    @registrable_factory
    @classmethod
    def load_from_path(cls, path: str, map_location: Any = None, use_saved_config_defaults: bool = True,
                       **kwargs: Any) -> Any:
        """Load a saved object of this class; ``kwargs`` override saved constructor arguments.

        With ``use_saved_config_defaults=False`` only ``kwargs`` are passed to the constructor and the
        saved state is loaded into the result.
        """
        from flambe.compile.serialization import load
        obj = load(path, map_location=map_location, overrides=kwargs,
                   use_saved_config=use_saved_config_defaults, expected_class=cls)
        return obj

    @property
    def _config_str(self) -> str:
        """The YAML of this object (with the extensions header when it needs extensions)."""
        from flambe.compile.yaml import dump_with_extensions
        return dump_with_extensions(self)


# ---------------------------------------------------------------------- helpers
def _bind_arguments(cls: type, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    if not args and not kwargs:
        return {}
    sig = signature_of(cls)
    if sig is None:
        return dict(kwargs) if not args else None
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return None
    out: Dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        else:
            out[name] = value
    return out


def _children(obj: Any) -> Iterator[Tuple[str, Any]]:
    """Direct children that carry state: sub-modules and Component attributes."""
    modules = obj.__dict__.get("_modules") if _is_module(obj) else None
    if modules:
        for name, child in modules.items():
            if child is not None:
                yield name, child
    for name, value in obj.__dict__.items():
        if name.startswith("_flambe") or (modules and name in modules):
            continue
        if isinstance(value, Component) or (modules is None and _is_module(value)):
            yield name, value


def _plain_modules(obj: Any) -> Iterator[Tuple[str, Any]]:
    """torch modules that are not Components, held directly by ``obj``."""
    for name, child in _children(obj):
        if _is_module(child) and not isinstance(child, Component):
            yield name, child


def _component_tree(root: Any, prefix: str) -> Iterator[Tuple["Component", str, bool]]:
    """Every Component under ``root`` (root first, each once) with its state prefix, and whether an
    enclosing ``nn.Module`` already covers its tensors."""
    memo: set = set()
    stack = [(root, prefix, False)]
    while stack:
        obj, pre, covered = stack.pop()
        if id(obj) in memo:
            continue
        memo.add(id(obj))
        if isinstance(obj, Component):
            yield obj, pre, covered
        inner_covered = covered or _is_module(obj)
        for name, child in reversed(list(_children(obj))):
            stack.append((child, f"{pre}{name}.", inner_covered))


def _load_module_tensors(module: Any, state_dict: Any, metadata: Dict[str, Any], prefix: str,
                         missing: List[str], unexpected: List[str]) -> None:
    """Load the tensors of the nn.Module tree at ``prefix`` from a flat state holding more than tensors."""
    import torch
    expected = torch.nn.Module.state_dict(module, keep_vars=True)
    tensors: "OrderedDict[str, Any]" = OrderedDict(
        (k, state_dict[prefix + k]) for k in expected if prefix + k in state_dict)
    base = prefix[:-1]
    tensors._metadata = OrderedDict(  # type: ignore[attr-defined]
        (k[len(prefix):] if prefix else k, v) for k, v in metadata.items()
        if not prefix or k == base or k.startswith(prefix))
    if base in metadata:
        tensors._metadata[""] = metadata[base]  # type: ignore[attr-defined]
    result = torch.nn.Module.load_state_dict(module, tensors, strict=False)
    missing.extend(prefix + k for k in result.missing_keys)
    unexpected.extend(prefix + k for k in result.unexpected_keys)
