"""Fetch remote resources (S3 objects and prefixes, HTTP(S) files) locally.

The heavy client libraries (``boto3`` and ``requests``) are imported lazily
inside the functions that need them so that importing :mod:`flambe.compile`
stays fast.

S3 clients are created with ``boto3.client("s3")`` and therefore honour the
standard AWS environment (``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``,
credentials, profiles, ...). Credentials are never logged, and user info and
query strings (which may hold pre-signed signatures) are stripped from URLs
before they appear in log records or error messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from flambe.compile.errors import LoadError

__all__ = [
    "download_http_file",
    "download_manager",
    "download_s3_file",
    "download_s3_folder",
    "http_exists",
    "is_url",
    "s3_exists",
]

logger = logging.getLogger(__name__)

_URL_SCHEMES = ("s3", "http", "https")
_S3_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_HTTP_TIMEOUT = (30.0, 300.0)  # (connect, read) seconds
_CHUNK_SIZE = 1024 * 1024
_FALLBACK_NAME = "download"
_S3_HINT = (
    "check the bucket and key; the S3 endpoint, region and credentials come "
    "from the standard AWS environment (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, "
    "AWS_PROFILE, ...)"
)
_HTTP_HINT = "check that the URL is correct and publicly reachable"


# ---------------------------------------------------------------------------
# Generic helpers
# ---------------------------------------------------------------------------


def is_url(path: str) -> bool:
    """Return whether ``path`` is a remote URL that this module can fetch.

    Parameters
    ----------
    path : str
        A local path or a URL.

    Returns
    -------
    bool
        ``True`` for ``s3://``, ``http://`` and ``https://`` URLs
        (scheme matched case-insensitively), ``False`` otherwise.

    """
    if not isinstance(path, str):
        return False
    scheme, sep, _ = path.partition("://")
    return bool(sep) and scheme.lower() in _URL_SCHEMES


def _redact(url: str) -> str:
    """Return ``url`` without user info, query string or fragment."""
    parsed = urlparse(url)
    # Keep host[:port] only; everything before "@" is user info.
    netloc = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=netloc, query="", fragment="", params="").geturl()


def _safe_name(name: str) -> str:
    """Return a usable single path component derived from ``name``."""
    name = os.path.basename(name.replace("\\", "/"))
    if name in ("", ".", ".."):
        return _FALLBACK_NAME
    return name


def _resolve_file_destination(destination: str, name: str) -> str:
    """Place the file inside ``destination`` if it is an existing directory."""
    if os.path.isdir(destination):
        return os.path.join(destination, name)
    return destination


def _ensure_parent(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


# ---------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------


def _parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Raises
    ------
    ValueError
        If ``url`` is not an ``s3://`` URL or has no bucket.

    """
    parsed = urlparse(url)
    if parsed.scheme.lower() != "s3":
        raise ValueError(f"Not an S3 URL: {_redact(url)!r}")
    bucket = parsed.netloc
    if not bucket:
        raise ValueError(f"S3 URL has no bucket: {_redact(url)!r}")
    key = parsed.path.lstrip("/")
    return bucket, key


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def _is_s3_not_found(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in _S3_NOT_FOUND_CODES


def _s3_object_exists(client: Any, bucket: str, key: str) -> bool:
    """Return whether ``key`` is an object (not a prefix) in ``bucket``."""
    from botocore.exceptions import ClientError

    if not key or key.endswith("/"):
        return False
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_s3_not_found(exc):
            return False
        raise
    return True


def _s3_folder_prefix(key: str) -> str:
    """Return the listing prefix for a folder-like key (``''`` is the bucket root)."""
    key = key.strip("/")
    return f"{key}/" if key else ""


def _s3_list_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Yield every object key under ``prefix`` (directory markers excluded)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/"):
                yield key


def _s3_prefix_exists(client: Any, bucket: str, prefix: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        return next(_s3_list_keys(client, bucket, prefix), None) is not None
    except ClientError as exc:
        if _is_s3_not_found(exc):
            return False
        raise


def s3_exists(url: str) -> bool:
    """Return whether an S3 object or a non-empty S3 "folder" exists.

    Parameters
    ----------
    url : str
        An ``s3://bucket/key`` URL. ``key`` may name an object or a prefix;
        a prefix counts as existing when at least one object lies under
        ``key/``. ``s3://bucket`` checks that the bucket holds any object.

    Returns
    -------
    bool
        ``True`` if the object or prefix exists, ``False`` if S3 reports it
        (or the bucket) as missing.

    Raises
    ------
    ValueError
        If ``url`` is not a valid S3 URL.
    botocore.exceptions.ClientError
        For S3 errors other than "not found" (e.g. access denied).

    """
    bucket, key = _parse_s3_url(url)
    client = _s3_client()
    if _s3_object_exists(client, bucket, key):
        return True
    return _s3_prefix_exists(client, bucket, _s3_folder_prefix(key))


def download_s3_file(url: str, destination: str) -> str:
    """Download a single S3 object.

    Parameters
    ----------
    url : str
        ``s3://bucket/key`` of the object.
    destination : str
        Local file path to write. If it is an existing directory the object
        is saved inside it under the key's basename. Missing parent
        directories are created.

    Returns
    -------
    str
        The path of the downloaded file.

    Raises
    ------
    LoadError
        If the bucket or object does not exist.
    ValueError
        If ``url`` is not a valid S3 URL.

    """
    from botocore.exceptions import ClientError

    bucket, key = _parse_s3_url(url)
    if not key or key.endswith("/"):
        raise LoadError(f"S3 URL does not name an object: {url!r}")
    target = _resolve_file_destination(destination, _safe_name(key))
    _ensure_parent(target)
    client = _s3_client()
    logger.debug("Downloading %s to %s", url, target)
    try:
        # s3transfer writes to a temporary sibling and renames on success.
        client.download_file(bucket, key, target)
    except ClientError as exc:
        if _is_s3_not_found(exc):
            raise LoadError(f"S3 object not found: {url!r}", hint=_S3_HINT) from exc
        raise
    return target


def download_s3_folder(url: str, destination: str) -> str:
    """Download every object under an S3 prefix, keeping the relative layout.

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix``; all objects under ``prefix/`` are fetched
        (``s3://bucket`` fetches the whole bucket). Zero-byte "directory
        marker" keys ending in ``/`` are skipped.
    destination : str
        Local directory to populate (created if missing). The object
        ``prefix/a/b.txt`` is written to ``destination/a/b.txt``.

    Returns
    -------
    str
        ``destination``.

    Raises
    ------
    LoadError
        If the bucket does not exist or no object lies under the prefix, or
        if a key would escape ``destination`` (e.g. contains ``..``).
    ValueError
        If ``url`` is not a valid S3 URL.

    """
    from botocore.exceptions import ClientError

    bucket, key = _parse_s3_url(url)
    prefix = _s3_folder_prefix(key)
    client = _s3_client()
    root = os.path.realpath(destination)
    count = 0
    try:
        for obj_key in _s3_list_keys(client, bucket, prefix):
            relative = obj_key[len(prefix) :]
            target = os.path.realpath(os.path.join(root, *relative.split("/")))
            if os.path.commonpath([root, target]) != root or target == root:
                raise LoadError(
                    f"Refusing to download S3 key {obj_key!r} outside of {destination!r}"
                )
            os.makedirs(os.path.dirname(target), exist_ok=True)
            logger.debug("Downloading s3://%s/%s to %s", bucket, obj_key, target)
            client.download_file(bucket, obj_key, target)
            count += 1
    except ClientError as exc:
        if _is_s3_not_found(exc):
            raise LoadError(f"S3 folder not found: {url!r}", hint=_S3_HINT) from exc
        raise
    if count == 0:
        raise LoadError(f"No S3 objects found under {url!r}", hint=_S3_HINT)
    return destination


# ---------------------------------------------------------------------------
# HTTP(S)
# ---------------------------------------------------------------------------


def _url_basename(url: str) -> str:
    """Return the file name from the path of ``url`` (query string ignored)."""
    path = unquote(urlparse(url).path).rstrip("/")
    return _safe_name(path)


def _stream_to_file(response: Any, target: str, shown: str) -> None:
    """Write a streamed response body to ``target`` atomically."""
    fd, tmp_path = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.",
        suffix=".part",
        dir=os.path.dirname(os.path.abspath(target)),
    )
    try:
        written = 0
        with os.fdopen(fd, "wb") as handle:
            for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
                if chunk:
                    handle.write(chunk)
                    written += len(chunk)
        expected = response.headers.get("Content-Length")
        encoding = response.headers.get("Content-Encoding", "identity")
        if (
            expected is not None
            and expected.isdigit()
            and encoding == "identity"
            and written != int(expected)
        ):
            raise LoadError(
                f"Incomplete download of {shown}: "
                f"received {written} of {expected} bytes"
            )
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise


def http_exists(url: str) -> bool:
    """Return whether an HTTP(S) resource can be fetched.

    A ``HEAD`` request is made (following redirects); servers that reject
    ``HEAD`` with 405/501 are retried with a streamed ``GET`` whose body is
    not read.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL.

    Returns
    -------
    bool
        ``True`` if the final response status is below 400.

    Raises
    ------
    requests.RequestException
        On network failures (connection refused, timeout, ...).

    """
    import requests

    response = requests.head(url, allow_redirects=True, timeout=_HTTP_TIMEOUT)
    response.close()
    if response.status_code in (405, 501):
        with requests.get(url, stream=True, timeout=_HTTP_TIMEOUT) as response:
            return response.status_code < 400
    return response.status_code < 400


def download_http_file(url: str, destination: str) -> str:
    """Stream an HTTP(S) resource to a local file.

    The body is written in chunks to a temporary file next to the target,
    which is moved into place with :func:`os.replace` only once the whole
    body has been received, so a failed download never leaves a partial
    file at ``destination``.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL.
    destination : str
        Local file path to write. If it is an existing directory the file is
        saved inside it under the URL path's basename. Missing parent
        directories are created.

    Returns
    -------
    str
        The path of the downloaded file.

    Raises
    ------
    LoadError
        If the server answers with an HTTP error status (the message names
        the URL, without credentials or query string, and the status), if
        the body is shorter than the announced ``Content-Length``, or on
        network failures (the ``requests`` exception is chained).

    """
    import requests

    target = _resolve_file_destination(destination, _url_basename(url))
    _ensure_parent(target)
    shown = _redact(url)
    logger.debug("Downloading %s to %s", shown, target)
    try:
        with requests.get(url, stream=True, timeout=_HTTP_TIMEOUT) as response:
            if response.status_code >= 400:
                reason = f" {response.reason}" if response.reason else ""
                raise LoadError(
                    f"Failed to download {shown}: HTTP {response.status_code}{reason}",
                    hint=_HTTP_HINT,
                )
            _stream_to_file(response, target, shown)
    except requests.RequestException as exc:
        # The original exception (chained) may quote the full URL; the
        # message itself names only the redacted one.
        raise LoadError(
            f"Failed to download {shown}: {type(exc).__name__}",
            hint="check the network connection and that the server is reachable",
        ) from exc
    return target


# ---------------------------------------------------------------------------
# Context manager
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def download_manager(path: str) -> Iterator[str]:
    """Make ``path`` available locally for the duration of a ``with`` block.

    * Local paths are yielded unchanged; nothing is copied or removed.
    * ``s3://bucket/key``: if ``key`` is an object it is downloaded as a
      file; otherwise it is treated as a folder and every object under
      ``key/`` is downloaded, preserving the relative layout.
    * ``http(s)://...``: the single file is downloaded, named after the
      basename of the URL path (query string stripped).

    Remote resources are placed in a fresh temporary directory, under the
    basename of the remote key / URL path (the bucket name for a whole
    bucket), and the temporary directory is removed when the block exits,
    even on error.

    Parameters
    ----------
    path : str
        Local path or ``s3://``, ``http://`` or ``https://`` URL.

    Yields
    ------
    str
        Local path of the file or directory.

    Raises
    ------
    LoadError
        If the S3 object/prefix does not exist or the HTTP server answers
        with an error status (e.g. 404).

    Examples
    --------
    >>> with download_manager("s3://bucket/models/run1") as local:  # doctest: +SKIP
    ...     os.listdir(local)

    """
    if not is_url(path):
        yield path
        return

    tmp_dir = tempfile.mkdtemp(prefix="flambe-download-")
    try:
        scheme = urlparse(path).scheme.lower()
        if scheme == "s3":
            bucket, key = _parse_s3_url(path)
            name = _safe_name(key.rstrip("/")) if key.strip("/") else _safe_name(bucket)
            local = os.path.join(tmp_dir, name)
            if _s3_object_exists(_s3_client(), bucket, key):
                download_s3_file(path, local)
            else:
                download_s3_folder(path, local)
        else:
            local = download_http_file(path, os.path.join(tmp_dir, _url_basename(path)))
        yield local
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
