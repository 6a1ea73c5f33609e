"""Unit tests for flambe.save / flambe.load on the local filesystem."""

from __future__ import annotations

import importlib.metadata
import os
import tarfile
import textwrap

import numpy as np
import pytest
import torch

import flambe
from flambe.compile import Component, LoadError, SaveError, yaml
from flambe.compile.serialization import load_state_from_file
from flambe.nn import Module

NS = __name__.split(".")[0]
COMPONENT_FILES = {"state.pt", "config.yaml", "version.txt", "source.py", "protocol_version.txt"}


class SerEncoder(Module):
    _flambe_version = "1.2.0"

    def __init__(self, dim: int = 3) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)
        self.seen = 0
        self.register_attrs("seen")


class SerHead(Module):
    def __init__(self, in_dim: int, inner: SerEncoder = None, inner_dim: int = None, bias_init=None) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(in_dim, 2)
        self.inner = inner
        self.inner_dim = inner_dim
        self.bias_init = bias_init


class SerClf(Module):
    def __init__(self, encoder: SerEncoder, head: SerHead, label: str = "clf") -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.label = label
        self.register_buffer("calls", torch.zeros(1))


class SerVocab(Component):
    """Registered attributes that YAML and weights-only loading cannot hold."""

    def __init__(self, name: str = "v") -> None:
        self.name = name
        self.tokens = {"a", "b"}
        self.table = np.arange(4)
        self.register_attrs("tokens", "table")


class SerTied(Module):
    def __init__(self, embedding, decoder) -> None:
        super().__init__()
        self.embedding = embedding
        self.decoder = decoder


class SerTrainer(Component):
    def __init__(self, model, optimizer) -> None:
        self.model = model
        self.optimizer = optimizer

    def run(self) -> bool:
        self.optimizer.zero_grad()
        self.model.encoder.proj(torch.ones(2, 4)).sum().backward()
        self.optimizer.step()
        return False


CLF_YAML = textwrap.dedent("""
    !SerClf
    encoder: !SerEncoder {dim: 4}
    head: !SerHead
      in_dim: !@ encoder[dim]
      inner: !SerEncoder {dim: 2}
      inner_dim: !@ head[inner].proj.in_features
    label: original
""")


def _build_clf() -> SerClf:
    torch.manual_seed(0)
    clf = yaml.load(CLF_YAML)()
    clf.encoder.seen = 5
    clf.head.inner.seen = 7
    with torch.no_grad():
        clf.calls.fill_(3)
    return clf


def _assert_same_state(a: Component, b: Component) -> None:
    sa, sb = a.get_state(), b.get_state()
    assert list(sa.keys()) == list(sb.keys())
    for key in sa:
        if isinstance(sa[key], torch.Tensor):
            assert torch.equal(sa[key], sb[key]), key
        elif isinstance(sa[key], np.ndarray):
            assert np.array_equal(sa[key], sb[key]), key
        else:
            assert sa[key] == sb[key], key


@pytest.fixture
def saved(tmp_path):
    clf = _build_clf()
    path = tmp_path / "model"
    flambe.save(clf, str(path))
    return clf, path


# ---------------------------------------------------------------------- layout
def test_directory_layout(saved):
    clf, path = saved
    assert COMPONENT_FILES | {"requirements.txt"} <= set(os.listdir(path))
    for sub in ("encoder", "head", os.path.join("head", "inner")):
        files = set(os.listdir(path / sub))
        assert COMPONENT_FILES <= files, sub
        assert "requirements.txt" not in files
    assert (path / "version.txt").read_text().strip() == "SerClf:0.0.0"
    assert (path / "encoder" / "version.txt").read_text().strip() == "SerEncoder:1.2.0"
    assert (path / "head" / "inner" / "version.txt").read_text().strip() == "SerEncoder:1.2.0"
    assert (path / "protocol_version.txt").read_text().strip() == "1"
    assert "class SerClf" in (path / "source.py").read_text()
    assert "class SerEncoder" in (path / "encoder" / "source.py").read_text()
    requirements = (path / "requirements.txt").read_text()
    assert "torch==" in requirements
    # plain torch sub-modules are not components: no directory of their own
    assert not (path / "encoder" / "proj").exists()
    assert not (path / "head" / "lin").exists()


def test_no_stray_temporary_files(saved):
    _, path = saved
    assert sorted(os.listdir(path.parent)) == ["model"]


def test_root_config_keeps_links(saved):
    _, path = saved
    config = yaml.load_file(str(path / "config.yaml")).obj
    assert config["head"]["in_dim"].text == "encoder[dim]"
    assert config["label"] == "original"


def test_state_file_is_weights_only_loadable(saved):
    _, path = saved
    payload = torch.load(path / "state.pt", weights_only=True)
    assert "calls" in payload["state"]
    assert torch.equal(payload["state"]["calls"], torch.full((1,), 3.0))


# ---------------------------------------------------------------------- load
def test_load_root_equals_original(saved):
    clf, path = saved
    loaded = flambe.load(str(path))
    assert type(loaded) is SerClf
    assert loaded.label == "original"
    assert loaded.head.inner_dim == 2
    assert loaded.encoder.seen == 5
    assert loaded.head.inner.seen == 7
    _assert_same_state(clf, loaded)
    assert all(not p.is_meta for p in loaded.parameters())


def test_every_subdirectory_loads_alone(saved):
    clf, path = saved
    subs = {"encoder": clf.encoder, "head": clf.head, os.path.join("head", "inner"): clf.head.inner}
    for sub, original in subs.items():
        loaded = flambe.load(str(path / sub))
        assert type(loaded) is type(original), sub
        _assert_same_state(original, loaded)
    assert flambe.load(str(path / "head")).inner_dim == 2


def test_subdirectory_config_has_no_outside_links(saved):
    _, path = saved
    head_config = (path / "head" / "config.yaml").read_text()
    assert "encoder[dim]" not in head_config
    schema = yaml.load(head_config)
    # the link that left 'head' is written as its value
    assert schema["in_dim"] == 4
    # the link that stays inside 'head' is kept, relative to it
    assert schema["inner_dim"].text == "inner.proj.in_features"


def test_outside_link_to_unyamlable_value_is_stashed(tmp_path):
    torch.manual_seed(0)
    text = textwrap.dedent("""
        !SerClf
        encoder: !SerEncoder {dim: 4}
        head: !SerHead
          in_dim: 4
          bias_init: !@ encoder.proj.bias
    """)
    clf = yaml.load(text)()
    flambe.save(clf, str(tmp_path / "m"))
    head_dir = tmp_path / "m" / "head"
    assert "stash.pkl" in os.listdir(head_dir)
    assert "!stash" in (head_dir / "config.yaml").read_text()
    head = flambe.load(str(head_dir))
    assert torch.equal(head.bias_init, clf.encoder.proj.bias)


def test_tied_parameters_stay_tied_after_load(tmp_path):
    torch.manual_seed(0)
    text = textwrap.dedent("""
        !SerTied
        embedding: !torch.Embedding {num_embeddings: 5, embedding_dim: 3}
        decoder: !SerHead
          in_dim: 3
          bias_init: !@ embedding.weight
    """)
    model = yaml.load(text)()
    assert model.decoder.bias_init is model.embedding.weight
    flambe.save(model, str(tmp_path / "tied"))
    loaded = flambe.load(str(tmp_path / "tied"))
    assert torch.equal(loaded.embedding.weight, model.embedding.weight)
    # a link to a parameter ties the two: after loading they must still be one tensor
    assert loaded.decoder.bias_init is loaded.embedding.weight


def test_unyamlable_registered_attrs_go_to_stash(tmp_path):
    vocab = SerVocab(name="w")
    vocab.tokens.add("c")
    flambe.save(vocab, str(tmp_path / "vocab"))
    files = os.listdir(tmp_path / "vocab")
    assert "stash.pkl" in files
    loaded = flambe.load(str(tmp_path / "vocab"))
    assert loaded.name == "w"
    assert loaded.tokens == {"a", "b", "c"}
    assert isinstance(loaded.table, np.ndarray)
    assert np.array_equal(loaded.table, np.arange(4))


def test_load_state_from_file(saved):
    clf, path = saved
    state = load_state_from_file(str(path))
    assert torch.equal(state["encoder.proj.weight"], clf.encoder.proj.weight)
    assert state["head.inner.seen"] == 7
    assert state._metadata["head.inner"]["_flambe_class"] == "SerEncoder"


def test_load_with_map_location_cpu(saved):
    clf, path = saved
    loaded = flambe.load(str(path), map_location="cpu")
    assert loaded.encoder.proj.weight.device.type == "cpu"
    _assert_same_state(clf, loaded)
    loaded = flambe.load(str(path), map_location=torch.device("cpu"))
    _assert_same_state(clf, loaded)


def test_component_save_method(tmp_path):
    clf = _build_clf()
    clf.save(str(tmp_path / "via_method"))
    _assert_same_state(clf, flambe.load(str(tmp_path / "via_method")))


def test_python_built_component_saves(tmp_path):
    torch.manual_seed(0)
    clf = SerClf(SerEncoder(3), SerHead(in_dim=3), label="py")
    flambe.save(clf, str(tmp_path / "py"))
    loaded = flambe.load(str(tmp_path / "py"))
    assert loaded.label == "py"
    _assert_same_state(clf, loaded)


def test_optimizer_state_survives_save_load(tmp_path):
    torch.manual_seed(0)
    text = textwrap.dedent("""
        !SerTrainer
        model: !SerClf
          encoder: !SerEncoder {dim: 4}
          head: !SerHead {in_dim: 4}
        optimizer: !torch.Adam
          params: !@ model.trainable_params
          lr: 0.01
    """)
    trainer = yaml.load(text)()
    trainer.run()
    flambe.save(trainer, str(tmp_path / "trainer"))
    loaded = flambe.load(str(tmp_path / "trainer"))
    assert isinstance(loaded.optimizer, torch.optim.Adam)
    _assert_same_state(trainer.model, loaded.model)
    params = list(loaded.model.parameters())
    assert loaded.optimizer.param_groups[0]["params"][0] is params[0]
    original = trainer.optimizer.state_dict()["state"]
    restored = loaded.optimizer.state_dict()["state"]
    assert set(original) == set(restored) and original
    for idx in original:
        assert torch.equal(original[idx]["exp_avg"], restored[idx]["exp_avg"])
    # training continues identically
    trainer.run()
    loaded.run()
    for p, q in zip(trainer.model.parameters(), loaded.model.parameters()):
        assert torch.allclose(p, q)


# ---------------------------------------------------------------------- formats
def test_compress_writes_loadable_tar_gz(tmp_path):
    clf = _build_clf()
    target = tmp_path / "model.tar.gz"
    flambe.save(clf, str(target), compress=True)
    assert target.is_file()
    assert tarfile.is_tarfile(target)
    with tarfile.open(target) as archive:
        names = archive.getnames()
    assert "model/config.yaml" in names
    assert "model/encoder/state.pt" in names
    loaded = flambe.load(str(target))
    assert type(loaded) is SerClf
    _assert_same_state(clf, loaded)


def test_pickle_only_single_file(tmp_path):
    clf = _build_clf()
    target = tmp_path / "model.pkl"
    flambe.save(clf, str(target), pickle_only=True)
    assert target.is_file()
    loaded = flambe.load(str(target))
    assert type(loaded) is SerClf
    _assert_same_state(clf, loaded)


def test_non_component_needs_pickle_only(tmp_path):
    with pytest.raises(SaveError):
        flambe.save({"a": 1}, str(tmp_path / "d"))
    flambe.save({"a": 1}, str(tmp_path / "d.pkl"), pickle_only=True)
    assert flambe.load(str(tmp_path / "d.pkl")) == {"a": 1}


# ---------------------------------------------------------------------- overwrite and recovery
def test_save_over_existing_path_without_overwrite(saved):
    clf, path = saved
    before = (path / "state.pt").read_bytes()
    with pytest.raises(SaveError) as info:
        flambe.save(clf, str(path))
    assert "overwrite" in (info.value.hint or "")
    assert (path / "state.pt").read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model"]


def test_save_with_overwrite_replaces(saved):
    clf, path = saved
    (path / "marker.txt").write_text("old")
    with torch.no_grad():
        clf.encoder.proj.weight.add_(1.0)
    flambe.save(clf, str(path), overwrite=True)
    assert not (path / "marker.txt").exists()
    loaded = flambe.load(str(path))
    assert torch.equal(loaded.encoder.proj.weight, clf.encoder.proj.weight)
    assert sorted(os.listdir(path.parent)) == ["model"]


def test_unknown_protocol_version(saved):
    _, path = saved
    (path / "protocol_version.txt").write_text("99\n")
    with pytest.raises(LoadError) as info:
        flambe.load(str(path))
    assert "protocol" in str(info.value)
    assert "99" in str(info.value)


def test_stale_backup_is_read_then_restored_by_the_next_save(saved):
    clf, path = saved
    backup = path.parent / f".{path.name}.old-x"
    os.rename(path, backup)
    assert not path.exists()
    loaded = flambe.load(str(path))  # reads the previous save; a reader moves nothing
    _assert_same_state(clf, loaded)
    assert backup.exists() and not path.exists()
    with pytest.raises(SaveError):  # the restored previous save is not silently replaced
        flambe.save(clf, str(path))
    assert path.is_dir() and not backup.exists()
    _assert_same_state(clf, flambe.load(str(path)))


def test_stale_temporary_sibling_is_cleaned_by_the_next_save(saved):
    clf, path = saved
    stale = path.parent / f".{path.name}.tmp-abc"
    stale.mkdir()
    (stale / "junk").write_text("x")
    flambe.load(str(path))
    assert stale.exists()  # a load never deletes what a writer may be using
    flambe.save(clf, str(path), overwrite=True)
    assert not stale.exists()
    assert sorted(os.listdir(path.parent)) == ["model"]


def test_load_missing_path(tmp_path):
    with pytest.raises(LoadError) as info:
        flambe.load(str(tmp_path / "nothing"))
    assert "does not exist" in str(info.value)


def test_load_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError):
        flambe.load(str(tmp_path / "empty"))


def test_major_class_version_mismatch_on_load(saved):
    _, path = saved
    (path / "encoder" / "version.txt").write_text("SerEncoder:2.0.0\n")
    payload = torch.load(path / "encoder" / "state.pt", weights_only=True)
    payload["metadata"][""]["_flambe_version"] = "2.0.0"
    torch.save(payload, path / "encoder" / "state.pt")
    with pytest.raises(LoadError) as info:
        flambe.load(str(path / "encoder"))
    assert "2.0.0" in str(info.value)


# ---------------------------------------------------------------------- load_from_path
def test_load_from_path_in_yaml(saved):
    clf, path = saved
    loaded = yaml.load(f"!SerClf.load_from_path {{path: '{path}'}}")()
    assert type(loaded) is SerClf
    assert loaded.label == "original"
    _assert_same_state(clf, loaded)


def test_load_from_path_kwargs_override_saved_arg(saved):
    clf, path = saved
    loaded = yaml.load(f"!{NS}.SerClf.load_from_path\npath: '{path}'\nlabel: overridden\n")()
    assert loaded.label == "overridden"
    _assert_same_state(clf, loaded)


def test_load_from_path_on_subdirectory(saved):
    clf, path = saved
    enc = yaml.load(f"!SerEncoder.load_from_path {{path: '{path / 'encoder'}'}}")()
    assert type(enc) is SerEncoder
    _assert_same_state(clf.encoder, enc)


def test_load_from_path_wrong_class(saved):
    _, path = saved
    with pytest.raises(LoadError):
        SerEncoder.load_from_path(str(path))


def test_load_from_path_python(saved):
    clf, path = saved
    loaded = SerClf.load_from_path(str(path), map_location="cpu")
    _assert_same_state(clf, loaded)


def test_save_scans_distributions_once(tmp_path, monkeypatch):
    # Saving a component from a non-flambe module looks up which distribution provides that module
    # (for requirements.txt / the extensions header). Scanning every installed distribution is slow
    # (~0.15 s each time here), so a save must not repeat it once per component directory.
    calls = []
    original = importlib.metadata.packages_distributions

    def counting():
        calls.append(1)
        return original()

    monkeypatch.setattr(importlib.metadata, "packages_distributions", counting)
    flambe.save(_build_clf(), str(tmp_path / "model"))
    assert len(calls) <= 1, f"saving one 4-component tree scanned installed distributions {len(calls)} times"
