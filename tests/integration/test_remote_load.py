"""flambe.load from s3:// (moto server on 127.0.0.1) and http:// (a local HTTP server)."""

import os

import pytest
import torch

import flambe
from flambe.compile import LoadError
from flambe.nn import Module

pytestmark = pytest.mark.integration


class RemoteNet(Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.inner = RemoteInner(size)
        self.out = torch.nn.Linear(size, 1)


class RemoteInner(Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(size, size)
        self.steps = 5
        self.register_attrs("steps")


def _upload_dir(client, bucket: str, local: str, prefix: str) -> None:
    for root, _, files in os.walk(local):
        for name in files:
            path = os.path.join(root, name)
            key = f"{prefix}/{os.path.relpath(path, local)}"
            client.upload_file(path, bucket, key)


def test_load_save_dir_from_s3(aws_env, tmp_path):
    import boto3
    model = RemoteNet(6)
    flambe.save(model, str(tmp_path / "net"))
    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    _upload_dir(client, "models", str(tmp_path / "net"), "exp/net")

    loaded = flambe.load("s3://models/exp/net")
    assert torch.equal(loaded.out.weight, model.out.weight)
    inner = flambe.load("s3://models/exp/net/inner")  # a part, straight from the bucket
    assert inner.steps == 5 and torch.equal(inner.layer.weight, model.inner.layer.weight)
    with pytest.raises(LoadError):
        flambe.load("s3://models/exp/missing")


def test_load_tar_gz_from_s3(aws_env, tmp_path):
    import boto3
    model = RemoteNet(3)
    flambe.save(model, str(tmp_path / "net.tar.gz"), compress=True)
    client = boto3.client("s3")
    client.create_bucket(Bucket="archives")
    client.upload_file(str(tmp_path / "net.tar.gz"), "archives", "net.tar.gz")
    loaded = flambe.load("s3://archives/net.tar.gz")
    assert torch.equal(loaded.inner.layer.bias, model.inner.layer.bias)


def test_load_from_http(http_server, tmp_path):
    model = RemoteNet(4)
    www = tmp_path / "www"
    www.mkdir()
    flambe.save(model, str(www / "net.tar.gz"), compress=True)
    flambe.save(model, str(www / "net.pkl"), pickle_only=True)
    with http_server(www) as url:
        for name in ("net.tar.gz", "net.pkl"):
            loaded = flambe.load(f"{url}/{name}")
            assert torch.equal(loaded.out.bias, model.out.bias), name
        with pytest.raises(LoadError, match="404"):
            flambe.load(f"{url}/absent.tar.gz")
