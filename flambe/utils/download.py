"""Download a data file once, verify it, and reuse the cached copy afterwards.

Files are cached under ``$FLAMBE_HOME/data/<cache_subdir>/<filename>`` (``FLAMBE_HOME`` defaults to
``~/.flambe``). A download is written to a temporary sibling, checked against its SHA-256 digest when one is
known, and only then renamed into place, so an interrupted or corrupted download is never mistaken for a
cached file. Once a file is cached, no network request is made for it again.

``FLAMBE_DATA_MIRROR`` (a base URL such as ``http://127.0.0.1:8000/data``) replaces the default base URL of
every dataset file: the file is fetched from ``<mirror>/<file name>``. Offline machines (and tests) can thus
serve the very same files from a local HTTP server.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional

from flambe.compile.downloader import download_http_file
from flambe.compile.errors import LoadError

__all__ = ["ChecksumError", "cache_dir", "fetch", "flambe_home", "local_or_fetch", "resolve_url", "sha256_of"]

logger = logging.getLogger(__name__)

HOME_ENV = "FLAMBE_HOME"
MIRROR_ENV = "FLAMBE_DATA_MIRROR"
_CHUNK = 1024 * 1024


class ChecksumError(LoadError):
    """A downloaded or cached file does not have the expected SHA-256 digest."""


def flambe_home() -> Path:
    """The flambe home folder: ``$FLAMBE_HOME``, or ``~/.flambe`` when it is unset or empty."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".flambe"


def cache_dir(cache_subdir: str) -> Path:
    """The folder caching the files of one data set: ``<flambe home>/data/<cache_subdir>``."""
    parts = Path(cache_subdir).parts
    if not parts or Path(cache_subdir).is_absolute() or ".." in parts:
        raise ValueError(f"cache_subdir must be a relative path inside the cache, got {cache_subdir!r}")
    return flambe_home() / "data" / cache_subdir


def resolve_url(url: str) -> str:
    """Apply the ``FLAMBE_DATA_MIRROR`` override to ``url``.

    Parameters
    ----------
    url : str
        The default URL of a file; its last path component is the file name.

    Returns
    -------
    str
        ``url`` unchanged when no mirror is set, else ``<mirror>/<file name of url>``.

    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return f"{mirror.rstrip('/')}/{name}"


def sha256_of(path: str | os.PathLike) -> str:
    """The hexadecimal SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path, url: str, expected: str, cached: bool) -> None:
    """Raise :class:`ChecksumError` (after deleting ``path``) if its digest is not ``expected``."""
    actual = sha256_of(path)
    if actual == expected.lower():
        return
    with contextlib.suppress(OSError):
        path.unlink()
    what = f"The cached copy of {url} ({path})" if cached else f"The file downloaded from {url}"
    raise ChecksumError(
        f"{what} failed its checksum: expected sha256 {expected.lower()}, got {actual}; the file was deleted",
        hint="run again to download it afresh; if this repeats, the server (or FLAMBE_DATA_MIRROR) serves "
             "a different file",
    )


def fetch(url: str, cache_subdir: str, filename: str, sha256: Optional[str] = None) -> str:
    """Return the local path of a data file, downloading it on first use only.

    Parameters
    ----------
    url : str
        The file's default URL (``FLAMBE_DATA_MIRROR``, when set, replaces its base; see
        :func:`resolve_url`).
    cache_subdir : str
        The data set's folder under ``$FLAMBE_HOME/data/``.
    filename : str
        The name of the cached file.
    sha256 : str, optional
        The expected hexadecimal SHA-256 digest. When given it is checked after every download and
        every time the cached copy is reused.

    Returns
    -------
    str
        The path of the cached file.

    Raises
    ------
    ChecksumError
        If the digest does not match; the file is deleted first, so the next call downloads again.
        The message names the URL, the expected and the actual digest.
    LoadError
        If the download fails (HTTP error status, network failure, truncated body).

    """
    if os.path.basename(filename) != filename or filename in ("", ".", ".."):
        raise ValueError(f"filename must be a plain file name, got {filename!r}")
    url = resolve_url(url)
    folder = cache_dir(cache_subdir)
    target = folder / filename
    if target.is_file():
        if sha256 is not None:
            _check(target, url, sha256, cached=True)
        return str(target)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".download", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        logger.info("Downloading %s to %s", url, target)
        download_http_file(url, str(tmp))
        if sha256 is not None:
            _check(tmp, url, sha256, cached=False)
        tmp.chmod(0o644)  # temporary files are created private; a cached data file is not secret
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return str(target)


def local_or_fetch(data_dir: Optional[str], base_url: str, cache_subdir: str, filename: str,
                   sha256: Optional[str] = None) -> str:
    """Return ``<data_dir>/<filename>`` when ``data_dir`` is given, else :func:`fetch` it from ``base_url``.

    A local folder is read as it is: no network, no checksum (a user's own copy may legitimately differ).

    Raises
    ------
    LoadError
        If ``data_dir`` is given but has no file named ``filename``.

    """
    if data_dir is not None:
        path = Path(data_dir).expanduser() / filename
        if not path.is_file():
            raise LoadError(f"Data file {filename!r} not found in data_dir {str(data_dir)!r}",
                            hint=f"put {filename} there, or leave data_dir unset to download it")
        return str(path)
    return fetch(base_url.rstrip("/") + "/" + filename, cache_subdir, filename, sha256)
