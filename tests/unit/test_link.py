"""Unit tests for links: parsing, resolution through the config tree and attributes, and errors."""

from __future__ import annotations

import textwrap

import pytest

from flambe.compile import (
    Component,
    Link,
    LinkError,
    MalformedLinkError,
    UnpreparedLinkError,
    create_link_str,
    parse_link_str,
    yaml,
)
from flambe.compile.schema import Builder


class LnkRnn:
    def __init__(self, hidden_size: int) -> None:
        self.hidden_size = hidden_size


class LnkEncoder(Component):
    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.rnn = LnkRnn(hidden_size=size * 10)


class LnkBox(Component):
    def __init__(self, a=None, b=None, c=None, d=None) -> None:
        self.a = a
        self.b = b
        self.c = c
        self.d = d


# ---------------------------------------------------------------------- parse / create
@pytest.mark.parametrize("text, expected", [
    ("obj", (["obj"], [])),
    ("obj[k1][k2].a1.a2", (["obj", "k1", "k2"], ["a1", "a2"])),
    ("model[encoder].size", (["model", "encoder"], ["size"])),
    ("encoder.rnn.hidden_size", (["encoder"], ["rnn", "hidden_size"])),
    ("layers[0][-1]", (["layers", 0, -1], [])),
    ("  train[model].trainable_params  ", (["train", "model"], ["trainable_params"])),
])
def test_parse_link_str(text, expected):
    assert parse_link_str(text) == (list(expected[0]), list(expected[1]))


@pytest.mark.parametrize("text", ["", "a..b", "a[b", "a]b[", "a.1b", "a[]", ".a", "a b", "a[b].c[d]"])
def test_parse_link_str_malformed(text):
    with pytest.raises(MalformedLinkError) as info:
        parse_link_str(text)
    assert isinstance(info.value, LinkError)
    assert "name[key][key].attribute" in (info.value.hint or "")


@pytest.mark.parametrize("schematic, attrs, expected", [
    (["obj"], None, "obj"),
    (["obj", "k1", "k2"], ["a1", "a2"], "obj[k1][k2].a1.a2"),
    (["layers", 0], [], "layers[0]"),
])
def test_create_link_str(schematic, attrs, expected):
    assert create_link_str(schematic, attrs) == expected
    assert parse_link_str(expected) == (schematic, list(attrs or []))


def test_link_object_text_and_equality():
    link = Link.from_string("model[encoder].rnn.hidden_size")
    assert link.schematic_path == ["model", "encoder"]
    assert link.attr_path == ["rnn", "hidden_size"]
    assert link.text == "model[encoder].rnn.hidden_size"
    assert link == Link(["model", "encoder"], ["rnn", "hidden_size"])
    assert link != Link(["model", "encoder"], ["rnn"])
    assert not link.resolved
    with pytest.raises(UnpreparedLinkError):
        _ = link.value


def test_link_needs_a_key():
    with pytest.raises(MalformedLinkError):
        Link([])


def test_malformed_link_in_yaml_has_location():
    with pytest.raises(MalformedLinkError) as info:
        yaml.load("!LnkBox\na: 1\nb: !@ a..b\n")
    assert info.value.location.line == 3


# ---------------------------------------------------------------------- resolution
def test_at_and_link_tags_both_work():
    text = textwrap.dedent("""
        !LnkBox
        a: !LnkEncoder {size: 3}
        b: !@ a.size
        c: !link a.size
    """)
    schema = yaml.load(text)
    assert isinstance(schema["b"], Link) and isinstance(schema["c"], Link)
    assert schema["b"] == schema["c"]
    obj = schema()
    assert obj.b == 3 and obj.c == 3


def test_attribute_chain():
    obj = yaml.load("!LnkBox\na: !LnkEncoder {size: 2}\nb: !@ a.rnn.hidden_size\n")()
    assert obj.b == 20


def test_link_to_whole_object_is_the_same_instance():
    obj = yaml.load("!LnkBox\na: !LnkEncoder {}\nb: !@ a\n")()
    assert obj.b is obj.a


def test_bracket_walk_then_attribute():
    text = textwrap.dedent("""
        !LnkBox
        a: !LnkBox
          a: !LnkEncoder {size: 5}
        b: !@ a[a].size
        c: !@ a[a].rnn.hidden_size
        d: !@ a[a][size]
    """)
    obj = yaml.load(text)()
    assert obj.b == 5
    assert obj.c == 50
    assert obj.d == 5


def test_bracket_walk_into_dicts_and_lists():
    text = textwrap.dedent("""
        !LnkBox
        a:
          encoders: [!LnkEncoder {size: 1}, !LnkEncoder {size: 7}]
          plain: {x: 42}
        b: !@ a[encoders][1].size
        c: !@ a[plain][x]
        d: !@ a[encoders][0]
    """)
    obj = yaml.load(text)()
    assert obj.b == 7
    assert obj.c == 42
    assert obj.d is obj.a["encoders"][0]


def test_links_inside_lists_and_dicts():
    text = textwrap.dedent("""
        !LnkBox
        a: !LnkEncoder {size: 6}
        b: [!@ a.size, {k: !@ a.rnn.hidden_size}]
        c: {nested: [!@ a]}
    """)
    obj = yaml.load(text)()
    assert obj.b == [6, {"k": 60}]
    assert obj.c["nested"][0] is obj.a


def test_link_to_a_link():
    obj = yaml.load("!LnkBox\na: !LnkEncoder {size: 8}\nb: !@ a.size\nc: !@ b\n")()
    assert obj.c == 8


def test_link_from_nested_component_to_earlier_sibling():
    text = textwrap.dedent("""
        !LnkBox
        a: !LnkEncoder {size: 9}
        b: !LnkBox
          a: !@ a.size
          b: !LnkEncoder
            size: !@ a.size
    """)
    obj = yaml.load(text)()
    assert obj.b.a == 9
    assert obj.b.b.size == 9


def test_link_is_resolved_and_remembers_value():
    schema = yaml.load("!LnkBox\na: !LnkEncoder {size: 3}\nb: !@ a.size\n")
    link = schema["b"]
    schema()
    assert link.resolved
    assert link.value == 3


# ---------------------------------------------------------------------- errors
def test_link_to_later_sibling_is_unprepared():
    schema = yaml.load("!LnkBox\na: !@ b.size\nb: !LnkEncoder {}\n")
    with pytest.raises(UnpreparedLinkError) as info:
        schema()
    err = info.value
    assert err.location.line == 2
    assert "not built yet" in err.message
    assert "above" in (err.hint or "")


def test_link_to_own_parent():
    schema = yaml.load("!LnkBox\na: !LnkBox\n  a: !LnkBox\n    b: !@ a\n")
    with pytest.raises(LinkError) as info:
        schema()
    assert not isinstance(info.value, UnpreparedLinkError)
    assert "parent" in info.value.message
    assert info.value.location.line == 4


def test_link_to_missing_key_lists_available():
    schema = yaml.load("!LnkBox\na: !LnkEncoder {}\nc: 1\nb: !@ zz.size\n")
    with pytest.raises(LinkError) as info:
        schema()
    err = info.value
    assert "'zz'" in err.message
    assert "available keys: a, c, b" in (err.hint or "")
    assert err.location.line == 4


def test_link_to_missing_nested_key_lists_available():
    schema = yaml.load("!LnkBox\na: {x: 1, y: 2}\nb: !@ a[z]\n")
    with pytest.raises(LinkError) as info:
        schema()
    assert "available keys: x, y" in (info.value.hint or "")


def test_link_to_missing_list_index():
    schema = yaml.load("!LnkBox\na: [1, 2]\nb: !@ a[5]\n")
    with pytest.raises(LinkError) as info:
        schema()
    assert "available keys: 0, 1" in (info.value.hint or "")


def test_link_to_missing_attribute():
    schema = yaml.load("!LnkBox\na: !LnkEncoder {}\nb: !@ a.rnn.nope\n")
    with pytest.raises(LinkError) as info:
        schema()
    err = info.value
    assert "nope" in err.message
    assert "LnkRnn" in err.message
    assert err.location.line == 3


def test_bracket_into_a_plain_value():
    schema = yaml.load("!LnkBox\na: 5\nb: !@ a[x]\n")
    with pytest.raises(LinkError) as info:
        schema()
    assert "int" in info.value.message


# ---------------------------------------------------------------------- roots other than a schema
def test_link_to_resource_in_root_mapping():
    schema = yaml.load("!LnkBox\na: !@ embeddings\nb: !@ settings[dim]\n")
    root = {"embeddings": "/p/x.txt", "settings": {"dim": 300}, "m": schema}
    obj = Builder(root=root).build(schema, ("m",))
    assert obj.a == "/p/x.txt"
    assert obj.b == 300


def test_link_between_stages_in_root_mapping():
    first = yaml.load("!LnkEncoder {size: 11}")
    second = yaml.load("!LnkBox\na: !@ first.rnn.hidden_size\nb: !@ first[size]\n")
    builder = Builder(root={"first": first, "second": second})
    builder.build(first, ("first",))
    obj = builder.build(second, ("second",))
    assert obj.a == 110
    assert obj.b == 11


def test_link_to_unbuilt_stage_in_root_mapping():
    first = yaml.load("!LnkEncoder {size: 11}")
    second = yaml.load("!LnkBox\na: !@ first.size\n")
    with pytest.raises(UnpreparedLinkError):
        Builder(root={"first": first, "second": second}).build(second, ("second",))


def test_link_into_python_built_component_in_root():
    enc = LnkEncoder(size=12)
    schema = yaml.load("!LnkBox\na: !@ enc[size]\nb: !@ enc.rnn.hidden_size\n")
    obj = Builder(root={"enc": enc, "m": schema}).build(schema, ("m",))
    assert obj.a == 12
    assert obj.b == 120



def test_pickled_schema_and_link_come_back_unbuilt():
    """Schemas travel to other processes (Ray workers) as blueprints: never built, never resolved."""
    import pickle

    schema = yaml.load("!LnkBox\na: 3\nb: !LnkBox\n  a: !@ a\n")
    link = schema["b"]["a"]
    built = schema()
    assert schema.is_built and link.resolved
    clone = pickle.loads(pickle.dumps(schema))
    assert not clone.is_built and not clone["b"].is_built
    assert not clone["b"]["a"].resolved
    with pytest.raises(UnpreparedLinkError):
        _ = clone["b"]["a"].value
    rebuilt = clone()
    assert rebuilt is not built and rebuilt.b.a == 3
