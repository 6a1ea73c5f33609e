"""Integration tests for :mod:`flambe.compile.downloader`.

S3 is served by moto in server mode and HTTP by the standard library's
threading HTTP server, both bound to 127.0.0.1 only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import QuietHandler, serve_directory

from flambe.compile.downloader import (
    download_http_file,
    download_manager,
    download_s3_file,
    download_s3_folder,
    http_exists,
    is_url,
    s3_exists,
)
from flambe.compile.errors import LoadError

pytestmark = pytest.mark.integration

BUCKET = "flambe-test-bucket"

S3_OBJECTS = {
    "single.txt": b"hello s3",
    "models/run1/config.yaml": b"key: value\n",
    "models/run1/weights/model.pt": b"\x00\x01\x02weights",
    "models/run1/weights/nested/deep/extra.bin": b"deep" * 1000,
    "models/run1/": b"",  # a "directory marker" object, must be skipped
    "models/run10/other.txt": b"must not be picked up by models/run1",
}

HTTP_FILES = {
    "data.txt": b"hello http\n" * 1000,
    "sub dir/file name.bin": bytes(range(256)) * 64,
}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def s3_bucket(aws_env: str) -> Iterator[str]:
    """Create and fill a fresh bucket on the moto server."""
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    for key, body in S3_OBJECTS.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    yield BUCKET


class _TestHandler(QuietHandler):
    """Static files plus a few special paths exercising error handling."""

    def do_GET(self) -> None:
        if self.path.startswith("/truncated.bin"):
            # Announce more bytes than are sent, then drop the connection.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/server-error"):
            self.send_error(500, "Boom")
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Serve a temporary directory over HTTP on 127.0.0.1; yield (base URL, dir)."""
    root = tmp_path_factory.mktemp("www")
    for name, body in HTTP_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    with serve_directory(root, _TestHandler) as url:
        yield url, root


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make :mod:`tempfile` create its directories under a test-owned folder."""
    base = tmp_path / "tempfiles"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------
# is_url / local paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://bucket/key", True),
        ("http://example.com/a", True),
        ("https://example.com/a?b=c", True),
        ("HTTPS://example.com/a", True),
        ("/local/path", False),
        ("relative/path.txt", False),
        ("file:///tmp/x", False),
        ("ftp://example.com/x", False),
        ("C:\\models\\x", False),
        ("", False),
    ],
)
def test_is_url(path: str, expected: bool) -> None:
    assert is_url(path) is expected


def test_local_path_passes_through(tmp_path: Path, private_tmp: Path) -> None:
    local = tmp_path / "model.pt"
    local.write_bytes(b"local")
    for path in (str(local), str(tmp_path), "does/not/exist"):
        with download_manager(path) as resolved:
            assert resolved == path
    assert local.read_bytes() == b"local"
    assert list(private_tmp.iterdir()) == []


# ---------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------


def test_s3_exists(s3_bucket: str) -> None:
    assert s3_exists(f"s3://{s3_bucket}/single.txt")
    assert s3_exists(f"s3://{s3_bucket}/models/run1/weights/model.pt")
    assert s3_exists(f"s3://{s3_bucket}/models/run1")
    assert s3_exists(f"s3://{s3_bucket}/models/run1/")
    assert s3_exists(f"s3://{s3_bucket}/models")
    assert s3_exists(f"s3://{s3_bucket}")
    assert not s3_exists(f"s3://{s3_bucket}/missing.txt")
    assert not s3_exists(f"s3://{s3_bucket}/models/run")  # partial name is no folder
    assert not s3_exists("s3://no-such-bucket-flambe/single.txt")


def test_download_s3_file(s3_bucket: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "renamed.txt"
    result = download_s3_file(f"s3://{s3_bucket}/single.txt", str(target))
    assert result == str(target)
    assert target.read_bytes() == S3_OBJECTS["single.txt"]

    # An existing directory as destination keeps the key's basename.
    result = download_s3_file(
        f"s3://{s3_bucket}/models/run1/weights/model.pt", str(tmp_path)
    )
    assert Path(result) == tmp_path / "model.pt"
    assert Path(result).read_bytes() == S3_OBJECTS["models/run1/weights/model.pt"]


def test_download_s3_file_missing_raises(s3_bucket: str, tmp_path: Path) -> None:
    target = tmp_path / "missing.txt"
    with pytest.raises(LoadError, match="missing.txt"):
        download_s3_file(f"s3://{s3_bucket}/missing.txt", str(target))
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_download_s3_folder(s3_bucket: str, tmp_path: Path) -> None:
    dest = tmp_path / "run1"
    result = download_s3_folder(f"s3://{s3_bucket}/models/run1", str(dest))
    assert result == str(dest)
    assert _tree(dest) == {
        "config.yaml": S3_OBJECTS["models/run1/config.yaml"],
        "weights/model.pt": S3_OBJECTS["models/run1/weights/model.pt"],
        "weights/nested/deep/extra.bin": S3_OBJECTS[
            "models/run1/weights/nested/deep/extra.bin"
        ],
    }


def test_download_s3_folder_trailing_slash(s3_bucket: str, tmp_path: Path) -> None:
    download_s3_folder(f"s3://{s3_bucket}/models/run1/weights/", str(tmp_path / "w"))
    assert set(_tree(tmp_path / "w")) == {"model.pt", "nested/deep/extra.bin"}


def test_download_s3_folder_missing_raises(s3_bucket: str, tmp_path: Path) -> None:
    with pytest.raises(LoadError):
        download_s3_folder(f"s3://{s3_bucket}/no/such/prefix", str(tmp_path / "x"))
    with pytest.raises(LoadError):
        download_s3_folder("s3://no-such-bucket-flambe/prefix", str(tmp_path / "y"))


def test_download_manager_s3_file(s3_bucket: str, private_tmp: Path) -> None:
    with download_manager(f"s3://{s3_bucket}/models/run1/config.yaml") as local:
        path = Path(local)
        assert path.is_file()
        assert path.name == "config.yaml"
        assert path.read_bytes() == S3_OBJECTS["models/run1/config.yaml"]
        assert private_tmp in path.parents
    assert not path.exists()
    assert list(private_tmp.iterdir()) == []


def test_download_manager_s3_folder(s3_bucket: str, private_tmp: Path) -> None:
    with download_manager(f"s3://{s3_bucket}/models/run1") as local:
        path = Path(local)
        assert path.is_dir()
        assert path.name == "run1"
        assert _tree(path) == {
            "config.yaml": S3_OBJECTS["models/run1/config.yaml"],
            "weights/model.pt": S3_OBJECTS["models/run1/weights/model.pt"],
            "weights/nested/deep/extra.bin": S3_OBJECTS[
                "models/run1/weights/nested/deep/extra.bin"
            ],
        }
    assert not path.exists()
    assert list(private_tmp.iterdir()) == []


def test_download_manager_s3_missing_raises(s3_bucket: str, private_tmp: Path) -> None:
    with (
        pytest.raises(LoadError),
        download_manager(f"s3://{s3_bucket}/missing/thing"),
    ):
        pytest.fail("the body must not run for a missing object")
    with pytest.raises(LoadError), download_manager("s3://no-such-bucket-flambe/key"):
        pytest.fail("the body must not run for a missing bucket")
    assert list(private_tmp.iterdir()) == []


def test_download_manager_cleans_up_on_error(s3_bucket: str, private_tmp: Path) -> None:
    seen: list[Path] = []
    with (
        pytest.raises(RuntimeError, match="inside the block"),
        download_manager(f"s3://{s3_bucket}/models/run1") as local,
    ):
        seen.append(Path(local))
        raise RuntimeError("inside the block")
    assert seen and not seen[0].exists()
    assert list(private_tmp.iterdir()) == []


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


def test_http_exists(http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    assert http_exists(f"{base}/data.txt")
    assert http_exists(f"{base}/sub%20dir/file%20name.bin")
    assert not http_exists(f"{base}/missing.txt")


def test_download_http_file(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_root
    target = tmp_path / "out" / "copy.txt"
    result = download_http_file(f"{base}/data.txt", str(target))
    assert result == str(target)
    assert target.read_bytes() == HTTP_FILES["data.txt"]

    dest_dir = tmp_path / "dir"
    dest_dir.mkdir()
    result = download_http_file(
        f"{base}/sub%20dir/file%20name.bin?token=abc", str(dest_dir)
    )
    assert Path(result) == dest_dir / "file name.bin"
    assert Path(result).read_bytes() == HTTP_FILES["sub dir/file name.bin"]
    assert sorted(p.name for p in dest_dir.iterdir()) == ["file name.bin"]


def test_download_http_404_raises(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_root
    target = tmp_path / "missing.txt"
    with pytest.raises(LoadError) as info:
        download_http_file(f"{base}/missing.txt", str(target))
    message = str(info.value)
    assert f"{base}/missing.txt" in message
    assert "404" in message
    assert list(tmp_path.iterdir()) == []


def test_download_http_error_message_hides_secrets(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = http_root
    host = base.removeprefix("http://")
    url = f"http://user:s3cr3t@{host}/server-error?X-Amz-Signature=deadbeef"
    with pytest.raises(LoadError) as info:
        download_http_file(url, str(tmp_path / "x"))
    message = str(info.value)
    assert "500" in message
    assert f"{base}/server-error" in message
    assert "s3cr3t" not in message
    assert "deadbeef" not in message
    assert list(tmp_path.iterdir()) == []


def test_download_http_truncated_leaves_no_partial_file(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = http_root
    target = tmp_path / "truncated.bin"
    with pytest.raises(LoadError, match="truncated.bin"):
        download_http_file(f"{base}/truncated.bin", str(target))
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_download_http_overwrites_existing_file(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = http_root
    target = tmp_path / "data.txt"
    target.write_bytes(b"old")
    download_http_file(f"{base}/data.txt", str(target))
    assert target.read_bytes() == HTTP_FILES["data.txt"]

    # A failed download keeps the previous content intact.
    with pytest.raises(LoadError):
        download_http_file(f"{base}/truncated.bin", str(target))
    assert target.read_bytes() == HTTP_FILES["data.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]


def test_download_manager_http(http_root: tuple[str, Path], private_tmp: Path) -> None:
    base, _ = http_root
    with download_manager(f"{base}/sub%20dir/file%20name.bin?version=3#frag") as local:
        path = Path(local)
        assert path.name == "file name.bin"
        assert path.read_bytes() == HTTP_FILES["sub dir/file name.bin"]
        assert private_tmp in path.parents
    assert not path.exists()
    assert list(private_tmp.iterdir()) == []


def test_download_manager_http_404_raises(
    http_root: tuple[str, Path], private_tmp: Path
) -> None:
    base, _ = http_root
    with pytest.raises(LoadError, match="404"), download_manager(f"{base}/missing.txt"):
        pytest.fail("the body must not run for a missing file")
    assert list(private_tmp.iterdir()) == []


def test_module_import_is_lazy() -> None:
    """Importing the downloader must not pull in boto3 or requests."""
    import subprocess
    import sys

    code = (
        "import sys, flambe.compile.downloader; "
        "bad = [m for m in ('boto3', 'botocore', 'requests') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    repo_root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_download_http_connection_error_raises(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    with pytest.raises(LoadError, match=f"127.0.0.1:{port}/file.txt"):
        download_http_file(f"http://127.0.0.1:{port}/file.txt", str(tmp_path / "f"))
    assert list(tmp_path.iterdir()) == []
