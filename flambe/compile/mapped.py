"""MappedRegistrable: a registrable built at load time from a mapping of keyword arguments."""

from __future__ import annotations

from typing import Any, Optional

from flambe.compile.errors import CompilationError, FlambeError
from flambe.compile.registry import Registrable


class MappedRegistrable(Registrable, should_register=False):
    """Loads from a mapping of keyword arguments, built immediately (no delayed init, no links).

    It is the base of :class:`flambe.runnable.Runnable`: ``yaml.load`` returns the object itself.
    Arguments that are components stay Schemas, for the object to build when it chooses.
    """

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> Any:
        from flambe.compile.schema import Schema, check_tree
        from flambe.compile.yaml import construct_arguments, node_location, written_tag
        kwargs, key_locations = construct_arguments(constructor, node, cls)
        schema = Schema(cls, factory_name, **kwargs)
        schema.tag = written_tag(node)
        schema.location = node_location(constructor, node)
        schema.key_locations = key_locations
        check_tree(schema)  # the runnable's own arguments and every component under them
        try:
            obj = schema.factory(**kwargs)
        except FlambeError:
            raise
        except Exception as exc:
            raise CompilationError(f"building '!{schema.tag}' failed: {type(exc).__name__}: {exc}",
                                   location=schema.location) from exc
        object.__setattr__(obj, "_flambe_schema", schema)
        schema._built = obj
        schema._compiled = dict(kwargs)
        return obj

    @classmethod
    def to_yaml(cls, representer: Any, node: Any, tag: str) -> Any:
        from flambe.compile.yaml import represent_config
        return represent_config(representer, node, tag)
