"""The flambe compiler: registry, YAML, Schema, links, search options, Component, save/load.

Importing this package never imports torch or ray; they load on first use.
"""

from flambe.compile import yaml
from flambe.compile.component import Component, State
from flambe.compile.errors import (
    CompilationError,
    ConfigError,
    ExtensionError,
    FlambeError,
    LinkError,
    LoadError,
    MalformedLinkError,
    RegistrationError,
    SaveError,
    SearchOptionError,
    TagError,
    UnpreparedLinkError,
)
from flambe.compile.link import ClusterResource, Link, create_link_str, parse_link_str
from flambe.compile.mapped import MappedRegistrable
from flambe.compile.options import (
    Choice,
    GridSearchOptions,
    LogUniform,
    RandInt,
    SampledUniformSearchOptions,
    SearchOption,
    Uniform,
)
from flambe.compile.registry import (
    Registrable,
    Registry,
    alias,
    current_registry,
    register,
    registrable_factory,
    registration_context,
    use_registry,
)
from flambe.compile.schema import Schema, fill_defaults
from flambe.compile.serialization import load, load_state_from_file, save


def make_component(class_: type, tag_namespace: str) -> type:
    """A Component subclass of any class, registered as ``!tag_namespace.ClassName``."""
    from flambe.compile.external import make_component as _make
    return _make(class_, tag_namespace)


__all__ = [
    "yaml", "Component", "State", "Schema", "Link", "ClusterResource", "MappedRegistrable", "Registrable",
    "Registry", "alias",
    "register", "registrable_factory", "registration_context", "use_registry", "current_registry",
    "make_component", "fill_defaults", "parse_link_str", "create_link_str", "save", "load",
    "load_state_from_file", "GridSearchOptions", "SampledUniformSearchOptions", "Uniform", "LogUniform",
    "RandInt", "Choice", "SearchOption", "FlambeError", "ConfigError", "TagError", "RegistrationError",
    "CompilationError", "LinkError", "MalformedLinkError", "UnpreparedLinkError", "SearchOptionError",
    "LoadError", "SaveError", "ExtensionError",
]
