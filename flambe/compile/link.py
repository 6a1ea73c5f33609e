"""Links: ``!@ stage[key][key].attr.attr`` (or ``!link``).

Brackets walk the config (the schema tree as written); dots read attributes of the built object. A link
may point only at something built before it, never at one of its own parents.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from flambe.compile.errors import LinkError, Location, MalformedLinkError, UnpreparedLinkError
from flambe.compile.registry import Registrable, alias

_LINK_RE = re.compile(r"^\s*([^\[\]\.\s]+)((?:\[[^\[\]]+\])*)((?:\.[A-Za-z_]\w*)*)\s*$")
_UNSET = object()


def parse_link_str(link_str: str, location: Optional[Location] = None) -> Tuple[List[Any], List[str]]:
    """Split ``'obj[k1][k2].a1.a2'`` into ``(['obj', 'k1', 'k2'], ['a1', 'a2'])``.

    Bracket keys that are integers become ints (list indices).

    Raises
    ------
    MalformedLinkError
        If the text is not of that form.
    """
    match = _LINK_RE.match(link_str or "")
    if not match:
        raise MalformedLinkError(
            f"Malformed link '!@ {link_str}'", location=location,
            hint="write a link as name[key][key].attribute, e.g. '!@ model[encoder].hidden_size'")
    head, brackets, attrs = match.groups()
    schematic: List[Any] = [head]
    for key in re.findall(r"\[([^\[\]]+)\]", brackets):
        key = key.strip().strip("'\"")
        schematic.append(int(key) if re.fullmatch(r"-?\d+", key) else key)
    return schematic, [a for a in attrs.split(".") if a]


def create_link_str(schematic_path: Sequence[Any], attr_path: Optional[Sequence[str]] = None) -> str:
    """Inverse of :func:`parse_link_str`."""
    text = str(schematic_path[0]) + "".join(f"[{k}]" for k in schematic_path[1:])
    return text + "".join(f".{a}" for a in (attr_path or ()))


@alias("link")
class Link(Registrable, tag_override="@"):
    """A reference to another part of the config, resolved when the component holding it is built.

    Parameters
    ----------
    schematic_path : Sequence
        Keys walked through the config: the first names a root entry (a stage, a resource, or a key
        of the top-level object), the rest walk into it.
    attr_path : Sequence[str], optional
        Attributes read from the built object the keys lead to.
    location : Location, optional
        Where the link is written, for error messages.
    """

    def __init__(self, schematic_path: Sequence[Any], attr_path: Optional[Sequence[str]] = None,
                 location: Optional[Location] = None) -> None:
        if not schematic_path:
            raise MalformedLinkError("A link needs at least one key", location=location)
        self.schematic_path = list(schematic_path)
        self.attr_path = list(attr_path or [])
        self.location = location
        self._value: Any = _UNSET

    @classmethod
    def from_string(cls, text: str, location: Optional[Location] = None) -> "Link":
        """Parse ``text`` (the part after ``!@``)."""
        schematic, attrs = parse_link_str(text, location)
        return cls(schematic, attrs, location)

    @property
    def text(self) -> str:
        """The link as written, without the tag."""
        return create_link_str(self.schematic_path, self.attr_path)

    @property
    def resolved(self) -> bool:
        """Whether the link has been resolved to a value."""
        return self._value is not _UNSET

    @property
    def value(self) -> Any:
        """The value the link resolved to (only after resolution)."""
        if self._value is _UNSET:
            raise UnpreparedLinkError(f"Link '!@ {self.text}' has not been resolved yet", location=self.location)
        return self._value

    def rerooted(self, prefix: Sequence[Any]) -> Optional["Link"]:
        """The same link relative to the object at ``prefix``, or None if it points outside it."""
        n = len(prefix)
        if n and len(self.schematic_path) > n and list(self.schematic_path[:n]) == list(prefix):
            link = Link(self.schematic_path[n:], self.attr_path, self.location)
            link._value = self._value
            return link
        if not n:
            return self
        return None

    def __repr__(self) -> str:
        return f"Link('{self.text}')"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Link) and other.schematic_path == self.schematic_path \
            and other.attr_path == self.attr_path

    def __hash__(self) -> int:
        return hash(self.text)

    def __getstate__(self) -> dict:
        # A resolved value may be a live object (a model); it is not part of the link's identity and
        # must not travel with pickled schemas.
        return {k: v for k, v in self.__dict__.items() if k != "_value"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._value = _UNSET

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> "Link":
        from flambe.compile.yaml import node_location
        return cls.from_string(str(constructor.construct_scalar(node)), node_location(constructor, node))

    @classmethod
    def to_yaml(cls, representer: Any, node: "Link", tag: str) -> Any:
        return representer.represent_scalar("!@", node.text)


# ---------------------------------------------------------------------- resolution
class LinkResolver:
    """Walks links through a root mapping.

    Parameters
    ----------
    root : Mapping
        The first key of every link is looked up here (stages and resources of an Experiment, or the
        keyword arguments of a top-level schema).
    is_ancestor : callable, optional
        ``is_ancestor(schema)`` is True for the schemas currently being built around the link.
    """

    def __init__(self, root: Mapping[str, Any], is_ancestor: Optional[Callable[[Any], bool]] = None) -> None:
        self.root = root
        self.is_ancestor = is_ancestor or (lambda schema: False)

    def target(self, link: Link) -> Any:
        """Walk the brackets of ``link`` and return the config node they lead to (schema or value)."""
        from flambe.compile.schema import Schema, config_of
        node: Any = self.root
        walked: List[Any] = []
        for key in link.schematic_path:
            if isinstance(node, Link):
                node = self.resolve(node)
            if not isinstance(node, (Schema, Mapping, list, tuple)):
                config = config_of(node)
                if config is None:
                    raise LinkError(
                        f"Link '!@ {link.text}' cannot look up '[{key}]' in "
                        f"'{_describe(walked)}': it is a {type(node).__name__}, not a config",
                        location=link.location,
                        hint="use brackets to walk the config and dots for attributes of built objects")
                node = config
            container = node.keywords if isinstance(node, Schema) else node
            try:
                node = container[key]
            except (KeyError, IndexError, TypeError):
                where = "the top level" if not walked else f"'{_describe(walked)}'"
                keys = list(container.keys()) if isinstance(container, Mapping) else list(range(len(container)))
                raise LinkError(
                    f"Link '!@ {link.text}' points to '{key}', which does not exist in {where}",
                    location=link.location,
                    hint=f"available keys: {', '.join(map(str, keys)) or '(none)'}") from None
            walked.append(key)
        return node

    def resolve(self, link: Link) -> Any:
        """Resolve ``link`` to a value, remember it on the link, and return it."""
        node = self.target(link)
        obj = self.built_value(node, link)
        for attr in link.attr_path:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise LinkError(
                    f"Link '!@ {link.text}': {type(obj).__name__} object has no attribute '{attr}'",
                    location=link.location,
                    hint="dots read attributes of the built object; use [key] to walk the config") from None
        link._value = obj
        return obj

    def built_value(self, node: Any, link: Link) -> Any:
        """The runtime value of a config node: built objects for schemas, resolved values for links."""
        from flambe.compile.schema import Schema
        if isinstance(node, Schema):
            if node.is_built:
                return node.built
            if self.is_ancestor(node):
                raise LinkError(
                    f"Link '!@ {link.text}' points to a parent of the place it is written",
                    location=link.location,
                    hint="a link may point only to objects above it that do not contain it")
            raise UnpreparedLinkError(
                f"Link '!@ {link.text}' points to '{node.tag}', which is not built yet at this point",
                location=link.location,
                hint="links may only point to objects defined above them (earlier in the config)")
        if isinstance(node, Link):
            return node.value if node.resolved else self.resolve(node)
        if isinstance(node, Mapping):
            return type(node)((k, self.built_value(v, link)) for k, v in node.items()) \
                if isinstance(node, dict) else node
        if isinstance(node, (list, tuple)):
            return type(node)(self.built_value(v, link) for v in node)
        return node


def _describe(path: Sequence[Any]) -> str:
    return create_link_str(path) if path else ""


class ClusterResource(Registrable, tag_override="cluster"):
    """``!cluster /path``: a resource that already lives on the cluster's machines (never uploaded).

    Only meaningful in a remote run; a local Experiment rejects it.
    """

    def __init__(self, path: str, location: Optional[Location] = None) -> None:
        self.path = path
        self.location = location

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ClusterResource) and other.path == self.path

    def __hash__(self) -> int:
        return hash(("cluster", self.path))

    def __repr__(self) -> str:
        return f"ClusterResource({self.path!r})"

    @classmethod
    def from_yaml(cls, constructor: Any, node: Any, factory_name: Optional[str]) -> "ClusterResource":
        from flambe.compile.yaml import node_location
        return cls(str(constructor.construct_scalar(node)), node_location(constructor, node))

    @classmethod
    def to_yaml(cls, representer: Any, node: "ClusterResource", tag: str) -> Any:
        return representer.represent_scalar("!cluster", node.path)
