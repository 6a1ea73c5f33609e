"""Unit tests for flambe.export: Exporter (grouped save/load, YAML) and Builder (local storage, checks)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import flambe
from flambe.compile import Component, ConfigError, SaveError, yaml
from flambe.export import Builder, Exporter
from flambe.nn import Module

NS = __name__.split(".")[0]


class ExpVocab(Component):
    def __init__(self, words: list) -> None:
        self.words = list(words)
        self.counts = {w: 0 for w in self.words}
        self.register_attrs("counts")


class ExpNet(Module):
    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size = size
        self.layer = torch.nn.Linear(size, 2)


class ExpCounted(Component):
    """Counts how often it is built, to check that a guarded Builder never builds."""

    built = 0

    def __init__(self, value: int = 1) -> None:
        ExpCounted.built += 1
        self.value = value


@pytest.fixture
def group() -> Exporter:
    vocab = ExpVocab(["a", "b"])
    vocab.counts["a"] = 7  # state that only the saved state (not the config) holds
    return Exporter(vocab=vocab, net=ExpNet(4), note="v1")


def _assert_same_group(loaded: Exporter, original: Exporter) -> None:
    assert isinstance(loaded, Exporter)
    assert list(loaded.exported) == ["vocab", "net", "note"]
    assert loaded.note == "v1"
    assert loaded.vocab.words == ["a", "b"] and loaded.vocab.counts == {"a": 7, "b": 0}
    assert isinstance(loaded.net, ExpNet) and loaded.net.size == 4
    assert torch.equal(loaded.net.layer.weight, original.net.layer.weight)
    assert torch.equal(loaded.net.layer.bias, original.net.layer.bias)


# ---------------------------------------------------------------------- Exporter
def test_exporter_attributes_and_run(group):
    assert group.vocab.words == ["a", "b"] and group.net.size == 4 and group.note == "v1"
    assert group.exported == {"vocab": group.vocab, "net": group.net, "note": "v1"}
    assert group.run() is False
    assert "vocab=" in repr(group)
    assert bool(Exporter()) is True  # no __len__: an empty exporter is not falsy


def test_exporter_save_load_round_trip(group, tmp_path):
    flambe.save(group, str(tmp_path / "bundle"))
    assert {"vocab", "net", "config.yaml", "state.pt"} <= set(os.listdir(tmp_path / "bundle"))
    _assert_same_group(flambe.load(str(tmp_path / "bundle")), group)
    part = flambe.load(str(tmp_path / "bundle" / "net"))  # each child loads on its own
    assert isinstance(part, ExpNet) and torch.equal(part.layer.weight, group.net.layer.weight)
    assert flambe.load(str(tmp_path / "bundle" / "vocab")).counts == {"a": 7, "b": 0}


def test_exporter_yaml_dump_and_load(group):
    text = yaml.dump(group)
    assert text.startswith("!Exporter\n")
    assert f"vocab: !{NS}.ExpVocab" in text and f"net: !{NS}.ExpNet" in text and "note: v1" in text
    rebuilt = yaml.load(text)()
    assert isinstance(rebuilt, Exporter) and rebuilt.vocab.words == ["a", "b"] and rebuilt.net.size == 4


def test_exporter_from_yaml_config():
    obj = yaml.load(textwrap.dedent(f"""
        !Exporter
          net: !{NS}.ExpNet {{size: 5}}
          linear: !torch.Linear {{in_features: 2, out_features: 1}}
          sizes: [1, 2]
    """))()
    assert obj.net.size == 5 and obj.linear.weight.shape == (1, 2) and obj.sizes == [1, 2]


@pytest.mark.parametrize("name", ["run", "save", "get_state", "exported", "_hidden", "has space"])
def test_exporter_rejects_names_that_cannot_be_attributes(name):
    with pytest.raises(ConfigError, match="cannot export under the name"):
        Exporter(**{name: 1})


# ---------------------------------------------------------------------- Builder: local
def _builder(destination, **kwargs) -> Builder:
    component = kwargs.pop("component", None)
    if component is None:  # not `or`: a schema without arguments is an empty mapping
        component = yaml.load(f"!{NS}.ExpNet {{size: 3}}")
    return Builder(component=component, destination=str(destination), **kwargs)


def test_builder_saves_locally(tmp_path):
    builder = _builder(tmp_path / "out")
    builder.run()
    loaded = flambe.load(str(tmp_path / "out"))
    assert isinstance(loaded, ExpNet)
    assert torch.equal(loaded.layer.weight, builder.compiled_component.layer.weight)


def test_builder_into_empty_existing_directory(tmp_path):
    (tmp_path / "out").mkdir()
    _builder(tmp_path / "out").run()
    assert isinstance(flambe.load(str(tmp_path / "out")), ExpNet)


def test_builder_refuses_existing_destination_without_force_and_builds_nothing(tmp_path):
    _builder(tmp_path / "out").run()
    before = (tmp_path / "out" / "state.pt").read_bytes()
    ExpCounted.built = 0
    builder = _builder(tmp_path / "out", component=yaml.load(f"!{NS}.ExpCounted {{value: 2}}"))
    with pytest.raises(SaveError) as info:
        builder.run()
    assert str(tmp_path / "out") in str(info.value) and "--force" in str(info.value)
    assert ExpCounted.built == 0  # checked before building
    assert (tmp_path / "out" / "state.pt").read_bytes() == before
    with pytest.raises(SaveError, match="--force"):
        builder.save_local(force=False)


def test_builder_force_replaces(tmp_path):
    _builder(tmp_path / "out").run()
    builder = _builder(tmp_path / "out", component=yaml.load(f"!{NS}.ExpCounted {{value: 9}}"))
    builder.run(force=True)
    loaded = flambe.load(str(tmp_path / "out"))
    assert isinstance(loaded, ExpCounted) and loaded.value == 9
    assert not (tmp_path / "out" / "layer").exists() and not any(
        p.name.startswith(".out.") for p in tmp_path.iterdir())  # no leftovers of the old save


def test_builder_existing_file_needs_force(tmp_path):
    (tmp_path / "out").write_text("something")
    with pytest.raises(SaveError, match="already exists"):
        _builder(tmp_path / "out").run()
    _builder(tmp_path / "out").run(force=True)
    assert isinstance(flambe.load(str(tmp_path / "out")), ExpNet)


def test_builder_compress_and_pickle_only(tmp_path):
    _builder(tmp_path / "net.tar.gz", compress=True).run()
    assert os.path.isfile(tmp_path / "net.tar.gz")
    assert isinstance(flambe.load(str(tmp_path / "net.tar.gz")), ExpNet)
    _builder(tmp_path / "net.pkl", pickle_only=True).run()
    assert isinstance(flambe.load(str(tmp_path / "net.pkl")), ExpNet)


def test_builder_accepts_a_built_component(tmp_path, group):
    Builder(component=group, destination=str(tmp_path / "g")).run()
    _assert_same_group(flambe.load(str(tmp_path / "g")), group)


def test_dry_run_describes_and_does_nothing(tmp_path):
    ExpCounted.built = 0
    builder = _builder(tmp_path / "out", component=yaml.load(f"!{NS}.ExpCounted {{}}"), compress=True)
    builder.parse()
    text = builder.dry_run()
    assert f"!{NS}.ExpCounted" in text and str(tmp_path / "out") in text and ".tar.gz" in text
    s3 = _builder("s3://bucket/a/", storage="s3")
    s3.parse()
    assert "s3://bucket/a " in s3.dry_run()
    assert ExpCounted.built == 0 and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- Builder: checks
def test_bad_storage_is_reported_with_its_location(tmp_path):
    config = tmp_path / "b.yaml"
    config.write_text(f"!Builder\ndestination: {tmp_path / 'x'}\nstorage: gcs\ncomponent: !{NS}.ExpNet {{}}\n")
    builder = yaml.load_file(str(config)).obj
    with pytest.raises(ConfigError) as info:
        builder.parse()
    message = str(info.value)
    assert "'gcs'" in message and "'local'" in message and "'s3'" in message
    assert f"{config}:3:" in message
    assert not (tmp_path / "x").exists()


def test_storage_is_case_insensitive(tmp_path):
    builder = _builder(tmp_path / "x", storage="Local")
    builder.parse()
    assert builder.storage == "local"


@pytest.mark.parametrize("component, match", [
    (3, "needs a component tag"),
    ("!ExpNet", "needs a component tag"),
])
def test_component_must_be_a_component(tmp_path, component, match):
    with pytest.raises(ConfigError, match=match):
        Builder(component=component, destination=str(tmp_path / "x")).parse()


def test_component_schema_of_a_non_component_is_rejected(tmp_path):
    from flambe.compile import Schema
    with pytest.raises(ConfigError, match="can only build components"):
        Builder(component=Schema(dict, a=1), destination=str(tmp_path / "x")).parse()


def test_nested_runnable_is_rejected(tmp_path):
    inner = Builder(component=yaml.load(f"!{NS}.ExpNet {{}}"), destination=str(tmp_path / "y"))
    with pytest.raises(ConfigError, match="the Runnable 'Builder'"):
        Builder(component=inner, destination=str(tmp_path / "x")).parse()


@pytest.mark.parametrize("kwargs, match", [
    ({"compress": True, "pickle_only": True}, "cannot both compress and pickle_only"),
    ({"destination": "s3://bucket/x"}, "storage: s3"),
    ({"destination": "  "}, "needs a destination"),
    ({"storage": "s3", "destination": "http://host/x"}, "invalid S3 destination"),
    ({"storage": "s3", "destination": "bucket", "compress": True}, "needs a name inside the bucket"),
])
def test_invalid_argument_combinations(kwargs, match):
    component = yaml.load(f"!{NS}.ExpNet {{}}")
    kwargs.setdefault("destination", "/tmp/unused-flambe-builder")
    with pytest.raises(ConfigError, match=match):
        Builder(component=component, **kwargs).parse()


def test_pickle_options_are_accepted_and_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="flambe.export.builder"):
        builder = _builder(tmp_path / "out", pickle_protocol=2, pickle_module="dill")
    assert "ignored" in caplog.text
    builder.run()
    assert isinstance(flambe.load(str(tmp_path / "out")), ExpNet)


# ---------------------------------------------------------------------- registration
def test_tags_resolve_without_importing_flambe_export():
    """A fresh interpreter resolves !Builder/!Exporter with no import of flambe.export, registers them in
    the default registry even inside a test registry, and imports neither torch nor ray to do so."""
    script = textwrap.dedent("""
        import sys
        from flambe.compile import yaml
        from flambe.compile.registry import DEFAULT_REGISTRY, use_registry
        assert "flambe.export" not in sys.modules
        with use_registry() as scratch:
            builder = yaml.load("!Builder\\ndestination: /x\\ncomponent: !Exporter {}\\n")
        assert "flambe.export" in sys.modules
        assert type(builder).__module__ == "flambe.export.builder", type(builder)
        assert DEFAULT_REGISTRY.lookup("Exporter").cls.__module__ == "flambe.export.exporter"
        assert "Exporter" not in scratch._tags
        assert "torch" not in sys.modules and "ray" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_first_lookups_from_many_threads_all_resolve():
    script = textwrap.dedent("""
        import threading
        from flambe.compile.registry import DEFAULT_REGISTRY
        barrier, results = threading.Barrier(8), []
        def look():
            barrier.wait()
            results.append(DEFAULT_REGISTRY.lookup("Builder").cls.__module__)
        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert results == ["flambe.export.builder"] * 8, results
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
