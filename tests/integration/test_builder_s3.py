"""Builder to S3 (a moto server on 127.0.0.1), read back with flambe.load("s3://..."), and the real
``flambe`` command running a ``!Builder`` config (local and S3)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import flambe
from flambe.compile import Component, SaveError, yaml
from flambe.export import Builder, Exporter
from flambe.nn import Module

pytestmark = pytest.mark.integration

NS = __name__.split(".")[0]
FLAMBE = [sys.executable, "-m", "flambe.cli"]


class S3Net(Module):
    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size = size
        self.layer = torch.nn.Linear(size, 2)


class S3Tag(Component):
    built = 0

    def __init__(self, label: str = "x") -> None:
        S3Tag.built += 1
        self.label = label


@pytest.fixture
def s3(aws_env):
    import boto3
    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    return client


def _keys(client, bucket: str = "models") -> list:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _build(destination: str, component: str = f"!{NS}.S3Net {{size: 4}}", **kwargs) -> Builder:
    return Builder(component=yaml.load(component), destination=destination, storage="s3", **kwargs)


def test_builder_to_s3_loads_back_equal(s3):
    builder = _build("s3://models/engines/v1",
                     f"!Exporter {{net: !{NS}.S3Net {{size: 4}}, tag: !{NS}.S3Tag {{label: hi}}}}")
    builder.run()
    keys = _keys(s3)
    assert "engines/v1/config.yaml" in keys and "engines/v1/net/state.pt" in keys
    loaded = flambe.load("s3://models/engines/v1")
    original = builder.compiled_component
    assert isinstance(loaded, Exporter) and loaded.tag.label == "hi"
    assert torch.equal(loaded.net.layer.weight, original.net.layer.weight)
    part = flambe.load("s3://models/engines/v1/net")
    assert torch.equal(part.layer.bias, original.net.layer.bias)


@pytest.mark.parametrize("destination, url", [
    ("models", "s3://models"),
    ("models/folder", "s3://models/folder"),
])
def test_destination_without_scheme(s3, destination, url):
    builder = _build(destination)
    builder.run()
    loaded = flambe.load(url)
    assert torch.equal(loaded.layer.weight, builder.compiled_component.layer.weight)


def test_existing_prefix_without_force_is_an_error(s3):
    _build("models/engine").run()
    before = {k: s3.get_object(Bucket="models", Key=k)["ETag"] for k in _keys(s3)}
    S3Tag.built = 0
    with pytest.raises(SaveError) as info:
        _build("models/engine", f"!{NS}.S3Tag {{label: new}}").run()
    assert "s3://models/engine" in str(info.value) and "--force" in str(info.value)
    assert S3Tag.built == 0
    assert {k: s3.get_object(Bucket="models", Key=k)["ETag"] for k in _keys(s3)} == before


def test_sibling_prefix_is_not_the_destination(s3):
    s3.put_object(Bucket="models", Key="engine-old/config.yaml", Body=b"x")
    s3.put_object(Bucket="models", Key="engines", Body=b"x")
    _build("models/engine").run()
    assert isinstance(flambe.load("s3://models/engine"), S3Net)
    assert "engine-old/config.yaml" in _keys(s3) and "engines" in _keys(s3)


def test_force_replaces_and_removes_stale_objects(s3):
    _build("models/engine", f"!Exporter {{a: !{NS}.S3Net {{}}, b: !{NS}.S3Tag {{}}}}").run()
    assert any(k.startswith("engine/b/") for k in _keys(s3))
    _build("models/engine", f"!Exporter {{a: !{NS}.S3Tag {{label: only}}}}").run(force=True)
    assert not any(k.startswith(("engine/b/", "engine/a/layer")) for k in _keys(s3))
    loaded = flambe.load("s3://models/engine")
    assert list(loaded.exported) == ["a"] and loaded.a.label == "only"


def test_compress_and_pickle_only_become_one_object(s3):
    builder = _build("models/net.tar.gz", compress=True)
    builder.run()
    _build("models/net.pkl", pickle_only=True).run()
    assert _keys(s3) == ["net.pkl", "net.tar.gz"]
    loaded = flambe.load("s3://models/net.tar.gz")
    assert torch.equal(loaded.layer.weight, builder.compiled_component.layer.weight)
    assert isinstance(flambe.load("s3://models/net.pkl"), S3Net)
    _build("models/net.tar.gz", compress=False).run(force=True)  # a directory replaces the archive
    assert "net.tar.gz" not in _keys(s3) and isinstance(flambe.load("s3://models/net.tar.gz"), S3Net)


def test_missing_bucket(aws_env):
    with pytest.raises(SaveError, match="bucket 'nowhere' does not exist"):
        _build("s3://nowhere/x").run()


def test_credentials_from_secrets(s3, monkeypatch, tmp_path, caplog):
    secrets = tmp_path / "secrets.ini"
    secrets.write_text("[AWS]\nACCESS_KEY_ID = AKIAFROMSECRETS\nSECRET_ACCESS_KEY = s3cr3t-value\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    builder = _build("models/secret")
    builder.inject_secrets(str(secrets))
    with caplog.at_level("DEBUG", logger="flambe"):
        builder.run()
    assert "secret/config.yaml" in _keys(builder.get_boto_session().client("s3"))
    flambe_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("flambe"))
    assert "Uploaded" in flambe_logs and "s3cr3t-value" not in flambe_logs and "AKIAFROMSECRETS" not in flambe_logs


# ---------------------------------------------------------------------- the real CLI
def _config(tmp_path, body: str) -> str:
    path = tmp_path / "build.yaml"
    path.write_text(textwrap.dedent(body).lstrip())
    return str(path)


def _flambe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(FLAMBE + list(args), capture_output=True, text=True, timeout=300)


def test_cli_builder_local(tmp_path):
    out = tmp_path / "engine"
    config = _config(tmp_path, f"""
        !Builder
        destination: {out}
        component: !Exporter
          linear: !torch.Linear {{in_features: 3, out_features: 2}}
          name: demo
    """)
    done = _flambe(config)
    assert done.returncode == 0, done.stderr
    loaded = flambe.load(str(out))
    assert isinstance(loaded, Exporter) and loaded.name == "demo"
    assert isinstance(loaded.linear, torch.nn.Linear) and loaded.linear.weight.shape == (2, 3)
    first = loaded.linear.weight.clone()

    again = _flambe(config)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert torch.equal(flambe.load(str(out)).linear.weight, first)

    forced = _flambe(config, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not torch.equal(flambe.load(str(out)).linear.weight, first)  # rebuilt with fresh weights


def test_cli_builder_bad_storage(tmp_path):
    config = _config(tmp_path, f"""
        !Builder
        destination: {tmp_path / 'x'}
        storage: ftp
        component: !Exporter {{}}
    """)
    done = _flambe(config)
    assert done.returncode == 2
    assert "'ftp'" in done.stderr and "'local', 's3'" in done.stderr and "build.yaml:3:" in done.stderr


def test_cli_builder_s3_with_secrets(s3, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.ini"
    secrets.write_text("[AWS]\nACCESS_KEY_ID = AKIACLI\nSECRET_ACCESS_KEY = cli-secret\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    config = _config(tmp_path, """
        !Builder
        storage: s3
        destination: models/cli
        component: !Exporter
          linear: !torch.Linear {in_features: 2, out_features: 2}
    """)
    done = _flambe(config, "--secrets", str(secrets))
    assert done.returncode == 0, done.stderr
    assert "cli-secret" not in done.stderr + done.stdout
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    loaded = flambe.load("s3://models/cli")
    assert isinstance(loaded.linear, torch.nn.Linear) and loaded.linear.weight.shape == (2, 2)
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
