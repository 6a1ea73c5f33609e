"""Small helpers shared by component packages (downloads and the local data cache)."""

from flambe.utils.download import (
    ChecksumError,
    cache_dir,
    fetch,
    flambe_home,
    local_or_fetch,
    resolve_url,
    sha256_of,
)

__all__ = ["ChecksumError", "cache_dir", "fetch", "flambe_home", "local_or_fetch", "resolve_url", "sha256_of"]
