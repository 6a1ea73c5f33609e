"""Unit tests for the S3 side of flambe.export that need no server: destinations and credentials."""

from __future__ import annotations

import logging

import pytest

from flambe.compile import yaml
from flambe.export import Builder
from flambe.export.s3 import parse_s3_destination
from flambe.runnable import MissingSecretsError


def _builder(destination: str, **kwargs) -> Builder:
    return Builder(component=yaml.load("!Exporter {}"), destination=destination, **kwargs)


@pytest.mark.parametrize("destination, expected", [
    ("my-bucket", ("my-bucket", "")),
    ("my-bucket/", ("my-bucket", "")),
    ("my-bucket/folder", ("my-bucket", "folder")),
    ("s3://my-bucket/a/b/", ("my-bucket", "a/b")),
    ("S3://my-bucket//a//b", ("my-bucket", "a/b")),
])
def test_parse_s3_destination(destination, expected):
    assert parse_s3_destination(destination) == expected


@pytest.mark.parametrize("destination", ["", "/folder", "s3://", "gs://bucket/x"])
def test_parse_s3_destination_errors(destination):
    with pytest.raises(ValueError):
        parse_s3_destination(destination)


# ---------------------------------------------------------------------- Builder: credentials
def test_boto_session_from_aws_secrets(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    secrets = tmp_path / "secrets.ini"
    secrets.write_text("[AWS]\nACCESS_KEY_ID = AKIASECRETID\nSECRET_ACCESS_KEY = very-secret\nREGION = eu-west-3\n")
    builder = _builder("bucket", storage="s3")
    builder.inject_secrets(str(secrets))
    with caplog.at_level(logging.DEBUG, logger="flambe"):
        session = builder.get_boto_session()
    credentials = session.get_credentials()
    assert credentials.access_key == "AKIASECRETID" and credentials.secret_key == "very-secret"
    assert session.region_name == "eu-west-3"
    assert "very-secret" not in caplog.text and "AKIASECRETID" not in caplog.text


def test_boto_session_with_half_the_secrets(tmp_path):
    secrets = tmp_path / "secrets.ini"
    secrets.write_text("[AWS]\nACCESS_KEY_ID = AKIA\n")
    builder = _builder(str(tmp_path / "x"))
    builder.inject_secrets(str(secrets))
    with pytest.raises(MissingSecretsError, match="SECRET_ACCESS_KEY"):
        builder.get_boto_session()


def test_boto_session_without_secrets_uses_the_default_chain(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = _builder(str(tmp_path / "x")).get_boto_session()
    assert session.get_credentials().access_key == "from-env"
