"""Loading configs into Schemas and dumping objects back to YAML (ruamel.yaml).

``from flambe.compile import yaml`` then ``yaml.load(text_or_stream)`` / ``yaml.dump(obj, stream)``.
A config may start with an extensions document (``module: location``), then ``---``, then the object.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.representer import SafeRepresenter

from flambe.compile.errors import CompilationError, ConfigError, FlambeError, Location, SaveError
from flambe.compile.link import Link
from flambe.compile.registry import Registrable, Registry, current_registry, register
from flambe.compile.schema import Schema, StashRef, config_of, fill_defaults


# ---------------------------------------------------------------------- loading
class FlambeConstructor(SafeConstructor):
    """Constructs ``!Tag`` nodes through a :class:`Registry` (set per load, never global)."""

    flambe_registry: Optional[Registry] = None
    flambe_file: Optional[str] = None


def node_location(constructor: Any, node: Any) -> Optional[Location]:
    """Where ``node`` starts, as a :class:`Location` naming the loaded file."""
    return Location.from_mark(getattr(node, "start_mark", None), getattr(constructor, "flambe_file", None))


def _node_tag(node: Any) -> str:
    tag = getattr(node.tag, "value", node.tag)
    return str(tag)


def written_tag(node: Any) -> str:
    """The tag as written on ``node`` (``'!cool_tag'`` -> ``'cool_tag'``); dumps keep it."""
    return _node_tag(node).lstrip("!")


def _construct_tagged(constructor: FlambeConstructor, tag_suffix: Any, node: Any) -> Any:
    tag = str(getattr(tag_suffix, "value", tag_suffix))
    registry = constructor.flambe_registry or current_registry()
    try:
        entry = registry.lookup(tag)
        cls = entry.cls
        if issubclass(cls, Registrable):
            return cls.from_yaml(constructor, node, entry.factory)
        if hasattr(cls, "from_yaml"):
            return cls.from_yaml(constructor, node, entry.factory)
        return _construct_plain(constructor, node, cls)
    except FlambeError as err:
        if err.location is None:
            err.location = node_location(constructor, node)
        raise


FlambeConstructor.add_multi_constructor("!", _construct_tagged)


def _construct_plain(constructor: FlambeConstructor, node: Any, cls: type) -> Any:
    """Build a class registered with :func:`register` that has no ``from_yaml`` of its own."""
    location = node_location(constructor, node)
    try:
        if isinstance(node, MappingNode):
            kwargs, _ = construct_arguments(constructor, node, cls)
            obj = cls(**kwargs)
            args: Any = kwargs
        elif isinstance(node, SequenceNode):
            values = constructor.construct_sequence(node, deep=True)
            obj, args = cls(*values), values
        else:
            value = constructor.construct_scalar(node)
            obj, args = (cls(), None) if value in ("", None) else (cls(value), value)
    except FlambeError:
        raise
    except Exception as exc:
        raise CompilationError(f"building '!{_node_tag(node).lstrip('!')}' failed: {exc}", location=location) from exc
    try:
        object.__setattr__(obj, "_flambe_yaml_args", args)
    except (AttributeError, TypeError):
        pass
    return obj


def construct_arguments(constructor: Any, node: Any,
                        cls: Optional[type] = None) -> Tuple[Dict[str, Any], Dict[str, Location]]:
    """The keyword arguments under a component tag, and where each key is written.

    An empty node (``!Tag`` alone) and the ``!Tag {{}}`` form both mean no arguments.
    """
    tag = _node_tag(node).lstrip("!")
    if isinstance(node, ScalarNode):
        if node.value in ("", "~", "null"):
            return {}, {}
        raise ConfigError(f"'!{tag}' expects a mapping of arguments, got the scalar '{node.value}'",
                          location=node_location(constructor, node),
                          hint=f"write '!{tag}' followed by indented 'name: value' lines, or '!{tag} {{}}'")
    if isinstance(node, SequenceNode):
        raise ConfigError(f"'!{tag}' expects a mapping of arguments, got a list",
                          location=node_location(constructor, node),
                          hint="components take named arguments: 'name: value'")
    if len(node.value) == 1 and isinstance(node.value[0][0], MappingNode) and not node.value[0][0].value:
        return {}, {}  # the documented '!Tag {{}}' spelling of "no arguments"
    constructor.flatten_mapping(node)
    kwargs: Dict[str, Any] = {}
    locations: Dict[str, Location] = {}
    for key_node, value_node in node.value:
        key = constructor.construct_object(key_node, deep=True)
        location = node_location(constructor, key_node)
        if not isinstance(key, str):
            raise ConfigError(f"argument names of '!{tag}' must be strings, got {key!r}", location=location)
        if key in kwargs:
            raise ConfigError(f"duplicate argument '{key}' under '!{tag}'", location=location,
                              hint=f"'{key}' is also given at {locations[key]}; keep one")
        kwargs[key] = constructor.construct_object(value_node, deep=True)
        locations[key] = location
    return kwargs, locations


@dataclass
class LoadedConfig:
    """A loaded config: its extensions header and its object (a Schema, or a built Runnable)."""

    extensions: Dict[str, str]
    obj: Any
    source: Optional[str] = None


def _make_yaml(registry: Optional[Registry], source: Optional[str]) -> YAML:
    y = YAML(typ="safe")  # ruamel.yaml.clib's C parser when it is installed (it is a dependency)
    y.Constructor = FlambeConstructor
    y.allow_duplicate_keys = False
    constructor = y.constructor
    constructor.flambe_registry = registry
    constructor.flambe_file = source
    return y


def _read(stream: Any) -> Tuple[str, Optional[str]]:
    if isinstance(stream, str):
        return stream, None
    text = stream.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return text, getattr(stream, "name", None)


def load_config(stream: Any, registry: Optional[Registry] = None, source: Optional[str] = None,
                install_extensions: bool = False, import_extensions: bool = True) -> LoadedConfig:
    """Load a config with its optional extensions header.

    Extensions are checked (and installed with ``install_extensions``) and imported before the
    object's tags are resolved, so ``!ext.Class`` tags of a declared extension work.

    Raises
    ------
    ConfigError
        Malformed YAML (with file:line:column), more than two documents, a bad extensions header.
    ExtensionError
        A declared extension is missing and ``install_extensions`` is False.
    """
    text, name = _read(stream)
    source = source or name
    y = _make_yaml(registry, source)
    try:
        nodes = list(y.compose_all(text))
        if not nodes:
            raise ConfigError("The config is empty", location=Location(source, 1, 1) if source else None,
                              hint="write one top-level object, e.g. '!Experiment'")
        if len(nodes) > 2:
            raise ConfigError(f"The config has {len(nodes)} YAML documents; expected at most 2",
                              location=Location.from_mark(nodes[2].start_mark, source),
                              hint="an optional extensions document, then '---', then one object")
        extensions: Dict[str, str] = {}
        if len(nodes) == 2:
            from flambe.compile.extensions import ensure_extensions, parse_extensions
            header = y.constructor.construct_document(nodes[0])
            base_dir = os.path.dirname(os.path.abspath(source)) if source and os.path.exists(source) else None
            extensions = parse_extensions(header, Location.from_mark(nodes[0].start_mark, source), base_dir)
            if import_extensions:
                ensure_extensions(extensions, install=install_extensions,
                                  registry=registry or current_registry())
        obj = y.constructor.construct_document(nodes[-1])
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "malformed YAML"
        raise ConfigError(f"Malformed YAML: {problem}", location=Location.from_mark(mark, source),
                          hint=_yaml_hint(problem)) from None
    except YAMLError as err:
        raise ConfigError(f"Malformed YAML: {err}", location=Location(source, 1, 1) if source else None) from None
    if isinstance(obj, Schema):
        obj.extensions = dict(extensions)
    return LoadedConfig(extensions, obj, source)


def _yaml_hint(problem: str) -> Optional[str]:
    if "duplicate key" in problem:
        return "each key may appear once in a mapping; remove or rename one of them"
    if "mapping values are not allowed" in problem:
        return "check the indentation, and quote values that contain ': '"
    if "found character '\\t'" in problem:
        return "YAML indents with spaces, not tabs"
    return None


def load(stream: Any, registry: Optional[Registry] = None, source: Optional[str] = None,
         install_extensions: bool = False) -> Any:
    """Load YAML text or a stream into a Schema (or the object itself for a MappedRegistrable)."""
    return load_config(stream, registry, source, install_extensions).obj


def load_file(path: str, registry: Optional[Registry] = None, install_extensions: bool = False) -> LoadedConfig:
    """Load a config file, reporting a missing file clearly."""
    try:
        with open(path, encoding="utf-8") as handle:
            return load_config(handle, registry, path, install_extensions)
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"'{path}' is a directory, not a config file") from None


# ---------------------------------------------------------------------- dumping
@dataclass
class DumpContext:
    """How to dump a sub-object on its own (for save dirs).

    Links into the sub-object (``prefix``) are rewritten relative to it; links out of it become their
    values, and values YAML cannot hold go to ``stash`` and are written as ``!stash id``.
    """

    prefix: Tuple[Any, ...] = ()
    stash: Dict[str, Any] = field(default_factory=dict)


class FlambeRepresenter(SafeRepresenter):
    """Represents components, schemas, links and options with their tags."""

    flambe_context: Optional[DumpContext] = None
    flambe_registry: Optional[Registry] = None
    flambe_fill_defaults: bool = True


def _represent_registrable(representer: FlambeRepresenter, data: Any) -> Any:
    registry = representer.flambe_registry or current_registry()
    cls = type(data)
    schema = getattr(data, "_flambe_schema", None)
    tag = schema.tag if isinstance(schema, Schema) else registry.default_tag(cls)
    return cls.to_yaml(representer, data, tag)


def _represent_schema(representer: FlambeRepresenter, data: Schema) -> Any:
    return represent_config(representer, data, data.tag)


def _represent_link(representer: FlambeRepresenter, link: Any) -> Any:
    context = representer.flambe_context
    if context is not None:
        inner = link.rerooted(context.prefix)
        if inner is not None:
            return representer.represent_scalar("!@", inner.text)
        if link.resolved:
            return representer.represent_data(link.value)
    return representer.represent_scalar("!@", link.text)


def _represent_stash(representer: FlambeRepresenter, ref: StashRef) -> Any:
    return representer.represent_scalar("!stash", ref.key)


def _represent_tuple(representer: FlambeRepresenter, data: tuple) -> Any:
    return representer.represent_sequence("tag:yaml.org,2002:seq", list(data))


def _represent_ordered(representer: FlambeRepresenter, data: Any) -> Any:
    return representer.represent_mapping("tag:yaml.org,2002:map", dict(data))


def _represent_other(representer: FlambeRepresenter, data: Any) -> Any:
    registry = representer.flambe_registry or current_registry()
    cls = type(data)
    try:
        tag = registry.default_tag(cls)
    except FlambeError:
        tag = None
    if tag is not None and hasattr(cls, "to_yaml"):
        return cls.to_yaml(representer, data, tag)
    if tag is not None and hasattr(data, "_flambe_yaml_args"):
        args = data._flambe_yaml_args
        if isinstance(args, dict):
            return representer.represent_mapping("!" + tag, args)
        if isinstance(args, list):
            return representer.represent_sequence("!" + tag, args)
        return representer.represent_scalar("!" + tag, "" if args is None else str(args))
    context = representer.flambe_context
    if context is not None:
        key = str(len(context.stash))
        context.stash[key] = data
        return representer.represent_scalar("!stash", key)
    raise SaveError(f"Cannot write a {cls.__module__}.{cls.__qualname__} as YAML",
                    hint="pass values YAML can hold (numbers, strings, lists, dicts, components), "
                         "or save the object with flambe.save, which stores such values beside the config")


FlambeRepresenter.add_representer(Schema, _represent_schema)
FlambeRepresenter.add_representer(Link, _represent_link)
FlambeRepresenter.add_representer(StashRef, _represent_stash)
FlambeRepresenter.add_representer(tuple, _represent_tuple)
FlambeRepresenter.add_representer(OrderedDict, _represent_ordered)
FlambeRepresenter.add_multi_representer(Registrable, _represent_registrable)
FlambeRepresenter.add_multi_representer(object, _represent_other)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def represent_config(representer: FlambeRepresenter, obj: Any, tag: str) -> Any:
    """Represent a component (or schema) as its tag and arguments, signature defaults filled in."""
    schema = obj if isinstance(obj, Schema) else config_of(obj)
    if schema is None:
        raise SaveError(f"Cannot dump {type(obj).__name__}: its constructor arguments are unknown",
                        hint="build it from YAML, or pass its arguments by name")
    from flambe.compile.options import SearchOption
    kwargs = dict(schema.keywords)
    if representer.flambe_fill_defaults:
        for key, value in fill_defaults({}, schema.factory).items():
            if key not in kwargs and _plain(value):
                kwargs[key] = value
    context = representer.flambe_context
    if context is not None and schema.compiled_kwargs is not None:
        # A saved config must rebuild the object as it was: built-in values instead of
        # unresolvable search options, and links kept only where they stay inside the dump.
        for key, value in kwargs.items():
            if isinstance(value, SearchOption) and key in schema.compiled_kwargs:
                kwargs[key] = schema.compiled_kwargs[key]
            elif isinstance(value, Link) and not value.resolved and key in schema.compiled_kwargs:
                if value.rerooted(context.prefix) is None:
                    kwargs[key] = schema.compiled_kwargs[key]
    return representer.represent_mapping("!" + tag.lstrip("!"), kwargs)


def _make_dumper(registry: Optional[Registry], context: Optional[DumpContext], fill: bool) -> YAML:
    y = YAML(typ="safe", pure=True)
    y.Representer = FlambeRepresenter
    y.default_flow_style = False
    y.width = 4096
    y.sort_base_mapping_type_on_output = False
    representer = y.representer
    representer.flambe_registry = registry
    representer.flambe_context = context
    representer.flambe_fill_defaults = fill
    representer.sort_base_mapping_type_on_output = False
    return y


def dump(obj: Any, stream: Any = None, registry: Optional[Registry] = None,
         context: Optional[DumpContext] = None, fill_defaults: bool = True) -> Optional[str]:
    """Write ``obj`` (an object or a Schema) as YAML that loads back to an equal object.

    Links stay links, tags are the ones written (aliases and factories included), and arguments left
    to their defaults are written out. Returns the text when ``stream`` is None.
    """
    y = _make_dumper(registry, context, fill_defaults)
    if stream is None:
        buffer = io.StringIO()
        y.dump(obj, buffer)
        return buffer.getvalue()
    y.dump(obj, stream)
    return None


def dump_with_extensions(obj: Any, context: Optional[DumpContext] = None,
                         registry: Optional[Registry] = None) -> str:
    """Dump ``obj`` preceded by an extensions document naming every extension it needs."""
    body = dump(obj, registry=registry, context=context)
    from flambe.compile.extensions import required_extensions
    extensions = required_extensions(obj, registry or current_registry())
    if not extensions:
        return body or ""
    header = dump(dict(sorted(extensions.items())), registry=registry, fill_defaults=False)
    return f"{header}---\n{body}"


# ---------------------------------------------------------------------- registrations
register(StashRef, "stash")

__all__ = ["load", "load_config", "load_file", "dump", "dump_with_extensions", "LoadedConfig", "DumpContext",
           "construct_arguments", "node_location", "represent_config"]
