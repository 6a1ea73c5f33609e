"""Unit tests for flambe.compile.yaml: loading into Schemas, building, dumping, and error locations."""

from __future__ import annotations

import io
import textwrap
from typing import List

import pytest

from flambe.compile import (
    CompilationError,
    Component,
    ConfigError,
    Link,
    MappedRegistrable,
    Schema,
    alias,
    registrable_factory,
    yaml,
)

NS = __name__.split(".")[0]


class YPair(Component):
    def __init__(self, a, b: int = 2, c=None) -> None:
        self.a = a
        self.b = b
        self.c = c


class YRecorder(Component):
    """Records the order in which instances are constructed."""

    built: List[str] = []

    def __init__(self, name: str) -> None:
        self.name = name
        YRecorder.built.append(name)


class YHolder(Component):
    def __init__(self, zeta=None, alpha=None, mid=None) -> None:
        self.zeta = zeta
        self.alpha = alpha
        self.mid = mid


@alias("y_alias_new")
@alias("y_alias_old")
class YAliased(Component):
    def __init__(self, value: int = 0) -> None:
        self.value = value


class YFactory(Component):
    def __init__(self, x: int = 0, label: str = "none") -> None:
        self.x = x
        self.label = label

    @registrable_factory
    @classmethod
    def from_half(cls, half: int, label: str = "half") -> "YFactory":
        return cls(x=2 * half, label=label)


class YMapped(MappedRegistrable):
    def __init__(self, p: int = 1, q=None) -> None:
        self.p = p
        self.q = q


def _args(obj):
    """The constructor arguments of a built component, as recorded by the builder."""
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


# ---------------------------------------------------------------------- loading
def test_load_returns_schema():
    schema = yaml.load("!YPair {a: 1}")
    assert isinstance(schema, Schema)
    assert schema.component_subclass is YPair
    assert schema.keywords == {"a": 1}
    assert schema["a"] == 1
    assert schema.a == 1
    assert not schema.is_built


def test_load_from_stream():
    schema = yaml.load(io.StringIO("!YPair {a: 5, b: 6}"))
    assert isinstance(schema, Schema)
    assert schema().b == 6


def test_calling_schema_twice_returns_same_object():
    schema = yaml.load("!YPair {a: 1}")
    first = schema()
    second = schema()
    assert first is second
    assert isinstance(first, YPair)
    assert (first.a, first.b, first.c) == (1, 2, None)


def test_nested_schemas_are_built():
    obj = yaml.load("!YPair\na: !YPair {a: 3, b: 4}\nb: 9\n")()
    assert isinstance(obj.a, YPair)
    assert obj.a.a == 3 and obj.a.b == 4
    assert obj.b == 9


def test_anchor_alias_builds_one_shared_instance():
    text = textwrap.dedent("""
        !YHolder
        zeta: &e !YPair {a: 1}
        alpha: *e
        mid: [*e, *e]
    """)
    obj = yaml.load(text)()
    assert obj.zeta is obj.alpha
    assert obj.mid[0] is obj.zeta and obj.mid[1] is obj.zeta


def test_kwargs_built_in_yaml_order():
    YRecorder.built.clear()
    text = textwrap.dedent("""
        !YHolder
        zeta: !YRecorder {name: z}
        alpha: !YRecorder {name: a}
        mid: [!YRecorder {name: m1}, {k: !YRecorder {name: m2}}]
    """)
    obj = yaml.load(text)()
    assert YRecorder.built == ["z", "a", "m1", "m2"]
    assert obj.mid[1]["k"].name == "m2"


def test_empty_braces_and_bare_tag_mean_no_arguments():
    for text in ("!YFactory {{}}", "!YFactory", "!YFactory {}"):
        schema = yaml.load(text)
        assert isinstance(schema, Schema), text
        assert schema.keywords == {}, text
        obj = schema()
        assert (obj.x, obj.label) == (0, "none")


def test_empty_braces_inside_a_list():
    obj = yaml.load("!YPair\na:\n- !YFactory {{}}\n- !YFactory\n- !YFactory {x: 1}\n")()
    assert [type(x) for x in obj.a] == [YFactory, YFactory, YFactory]
    assert [x.x for x in obj.a] == [0, 0, 1]


def test_scalar_argument_to_component_is_an_error():
    with pytest.raises(ConfigError) as info:
        yaml.load("!YPair hello")
    assert info.value.location is not None


def test_mapped_registrable_loads_as_built_object():
    obj = yaml.load("!YMapped\np: 3\nq: !YPair {a: 1}\n")
    assert type(obj) is YMapped
    assert obj.p == 3
    # component arguments stay schemas for the object to build when it wants
    assert isinstance(obj.q, Schema)
    assert obj.q().a == 1


def test_mapped_registrable_bare_tag():
    obj = yaml.load("!YMapped")
    assert type(obj) is YMapped
    assert (obj.p, obj.q) == (1, None)


def test_mapped_registrable_unknown_argument():
    with pytest.raises(CompilationError) as info:
        yaml.load("!YMapped {pp: 1}")
    assert "did you mean" in (info.value.hint or "")
    assert "'p'" in info.value.hint


def test_plain_yaml_values_pass_through():
    data = yaml.load("a: [1, 2.5, true, null, 'x']\nb: {c: 1}\n")
    assert data == {"a": [1, 2.5, True, None, "x"], "b": {"c": 1}}


# ---------------------------------------------------------------------- dumping
def test_dump_roundtrip_equal_constructor_args():
    text = textwrap.dedent("""
        !YPair
        a: !YPair {a: [1, 2, 3], b: 7}
        b: 11
        c: {k: v, n: 1.5}
    """)
    first = yaml.load(text)()
    dumped = yaml.dump(first)
    second = yaml.load(dumped)()
    assert type(second) is YPair
    assert second is not first
    assert second.b == 11
    assert second.c == {"k": "v", "n": 1.5}
    assert _args(second.a) == _args(first.a) == {"a": [1, 2, 3], "b": 7, "c": None}


def test_dump_of_schema_equals_dump_of_built_object():
    schema = yaml.load("!YPair {a: 1, b: 3}")
    before = yaml.dump(schema)
    after = yaml.dump(schema())
    assert before == after


def test_dump_fills_signature_defaults():
    text = yaml.dump(yaml.load("!YPair {a: 1}")())
    loaded = yaml.load(text)
    assert loaded.keywords == {"a": 1, "b": 2, "c": None}
    assert text.startswith("!YPair\n")  # the tag as written (bare), not the namespaced default


def test_dump_without_fill_defaults():
    text = yaml.dump(yaml.load("!YPair {a: 1}"), fill_defaults=False)
    assert yaml.load(text).keywords == {"a": 1}


def test_dump_returns_text_or_writes_stream():
    buf = io.StringIO()
    assert yaml.dump(YPair(a=1), buf) is None
    assert buf.getvalue() == yaml.dump(YPair(a=1))


def test_links_stay_links_in_dump():
    schema = yaml.load("!YPair\na: !YPair {a: 4}\nb: !@ a.a\n")
    obj = schema()
    assert obj.b == 4
    text = yaml.dump(obj)
    assert "!@ a.a" in text
    reloaded = yaml.load(text)
    assert isinstance(reloaded["b"], Link)
    assert reloaded["b"].text == "a.a"
    assert reloaded().b == 4


def test_dump_preserves_factory_tag():
    schema = yaml.load("!YFactory.from_half {half: 4}")
    obj = schema()
    assert (obj.x, obj.label) == (8, "half")
    text = yaml.dump(obj)
    assert ".from_half" in text.splitlines()[0]
    reloaded = yaml.load(text)
    assert reloaded.factory_name == "from_half"
    # the factory's own arguments (defaults filled) are dumped, not the constructor's
    assert reloaded.keywords == {"half": 4, "label": "half"}
    assert reloaded().x == 8


def test_dump_uses_top_most_alias_by_default():
    text = yaml.dump(YAliased(value=3))
    assert text.splitlines()[0] == f"!{NS}.y_alias_new"


def test_dump_preserves_the_alias_written():
    # tags are the ones written: a config using the older alias dumps with that alias
    text = yaml.dump(yaml.load(f"!{NS}.y_alias_old {{value: 2}}")())
    assert text.splitlines()[0] == f"!{NS}.y_alias_old"
    assert yaml.load(text)().value == 2


def test_python_built_component_dumps():
    obj = YPair(1, b=5)
    text = yaml.dump(obj)
    again = yaml.load(text)()
    assert _args(again) == {"a": 1, "b": 5, "c": None}


def test_dump_tuple_as_list():
    text = yaml.dump(YPair(a=(1, 2)))
    assert yaml.load(text)().a == [1, 2]


def test_dump_unrepresentable_value_is_an_error():
    from flambe.compile import SaveError

    with pytest.raises(SaveError):
        yaml.dump(YPair(a=object()))


def test_search_options_dump_back():
    text = yaml.dump(yaml.load("!YPair\na: !g [1, 2]\nb: !s [1, 10, 3]\n"), fill_defaults=False)
    assert "!g" in text and "!s" in text
    reloaded = yaml.load(text)
    assert reloaded["a"].options == [1, 2]
    assert (reloaded["b"].low, reloaded["b"].high, reloaded["b"].k) == (1, 10, 3)


# ---------------------------------------------------------------------- errors
def test_malformed_yaml_location():
    text = "!YPair\na: [1, 2\nb: 3\n"
    with pytest.raises(ConfigError) as info:
        yaml.load(text)
    err = info.value
    assert "Malformed YAML" in err.message
    assert err.location is not None
    assert err.location.line == 3
    assert str(err).startswith("<string>:3:")


def test_bad_indentation_location():
    text = "!YPair\n  a: 1\n   b: 2\n"
    with pytest.raises(ConfigError) as info:
        yaml.load(text)
    assert info.value.location.line == 3
    assert "indentation" in (info.value.hint or "")


def test_duplicate_argument_is_config_error():
    with pytest.raises(ConfigError) as info:
        yaml.load("!YPair\na: 1\nb: 2\na: 3\n")
    err = info.value
    assert "duplicate" in err.message
    assert err.location.line == 4
    assert "2:1" in (err.hint or "")


def test_duplicate_key_in_plain_mapping_is_config_error():
    with pytest.raises(ConfigError) as info:
        yaml.load("x: 1\ny: 2\nx: 3\n")
    assert info.value.location is not None
    assert info.value.location.line == 3


def test_unknown_argument_did_you_mean():
    schema = yaml.load("!YPair\na: 1\nbb: 2\n")
    with pytest.raises(CompilationError) as info:
        schema()
    err = info.value
    assert "bb" in err.message
    assert "did you mean 'b'" in (err.hint or "")
    assert err.location is not None and err.location.line == 3
    assert err.key_path == ["bb"]


def test_unknown_argument_nested_key_path():
    schema = yaml.load("!YPair\na: 1\nb: 2\nc:\n  inner: !YPair {a: 1, cc: 2}\n")
    with pytest.raises(CompilationError) as info:
        schema()
    assert info.value.key_path == ["c", "inner", "cc"]
    assert info.value.location.line == 5


def test_missing_required_argument_named():
    schema = yaml.load("!YPair\nb: 5\n")
    with pytest.raises(CompilationError) as info:
        schema()
    assert "'a'" in info.value.message
    assert "missing" in info.value.message
    assert info.value.location.line == 1


def test_constructor_exception_becomes_compilation_error():
    class YExploding(Component):
        def __init__(self, n: int) -> None:
            raise ValueError(f"bad n {n}")

    with pytest.raises(CompilationError) as info:
        yaml.load("x: 1\ny: !YExploding {n: 3}\n")["y"]()
    assert "bad n 3" in str(info.value)
    assert info.value.location.line == 2
    assert isinstance(info.value.__cause__, ValueError)


def test_load_file_location_has_file_name(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("!YPair\na: 1\nzz: 2\n")
    loaded = yaml.load_file(str(path))
    assert isinstance(loaded.obj, Schema)
    assert loaded.extensions == {}
    with pytest.raises(CompilationError) as info:
        loaded.obj()
    assert info.value.location.file == str(path)
    assert info.value.location.line == 3
    assert str(info.value).startswith(f"{path}:3:1")


def test_load_file_malformed_has_file_name(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("!YPair\na: [1\n")
    with pytest.raises(ConfigError) as info:
        yaml.load_file(str(path))
    assert info.value.location.file == str(path)


def test_load_file_unknown_tag_has_file_name(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_text("!YPair\na: !YPiar {a: 1}\n")
    with pytest.raises(ConfigError) as info:
        yaml.load_file(str(path))
    err = info.value
    assert err.location.file == str(path)
    assert (err.location.line, err.location.column) == (2, 4)
    assert "YPair" in (err.hint or "")


def test_load_file_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        yaml.load_file(str(tmp_path / "nope.yaml"))
    assert "does not exist" in info.value.message


def test_empty_config_is_error():
    with pytest.raises(ConfigError):
        yaml.load("")


def test_three_documents_is_error():
    with pytest.raises(ConfigError) as info:
        yaml.load("a: 1\n---\nb: 2\n---\nc: 3\n")
    assert info.value.location.line == 5


def test_error_survives_pickling():
    import pickle

    with pytest.raises(CompilationError) as info:
        yaml.load("!YPair\nb: 1\n")()
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is CompilationError
    assert again.location == info.value.location
    assert again.hint == info.value.hint
