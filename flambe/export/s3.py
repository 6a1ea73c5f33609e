"""Upload a flambe save to S3 so that ``flambe.load("s3://bucket/prefix")`` reads it back.

The layout matches what :func:`flambe.compile.downloader.download_manager` expects: a save directory
becomes one object per file under ``prefix/`` (its own ``config.yaml`` at ``prefix/config.yaml``), and
a single-file save (``.tar.gz`` or pickle) becomes the object ``prefix`` itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any, List, Tuple

from flambe.compile.downloader import _is_s3_not_found, _s3_list_keys
from flambe.compile.errors import SaveError

logger = logging.getLogger(__name__)

_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
_CREDENTIALS_HINT = ("credentials come from the standard AWS chain (environment, ~/.aws, instance role), or "
                     "from an [AWS] section with ACCESS_KEY_ID and SECRET_ACCESS_KEY in the --secrets file")


def parse_s3_destination(destination: str) -> Tuple[str, str]:
    """Split ``my-bucket``, ``my-bucket/folder`` or ``s3://my-bucket/folder`` into ``(bucket, prefix)``.

    The prefix has no leading or trailing ``/`` (``''`` for the bucket root).

    Raises
    ------
    ValueError
        For another URL scheme, or a destination without a bucket.
    """
    text = str(destination).strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() != "s3":
            raise ValueError(f"'{destination}' is a {scheme}:// URL, not an S3 location")
        text = rest
    bucket, _, prefix = text.partition("/")
    if not bucket:
        raise ValueError(f"'{destination}' names no S3 bucket")
    return bucket, "/".join(part for part in prefix.split("/") if part)


def s3_url(bucket: str, prefix: str) -> str:
    """``s3://bucket/prefix`` (``s3://bucket`` for the root)."""
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def _client_error(exc: BaseException, what: str, url: str) -> SaveError:
    from botocore.exceptions import ClientError, NoCredentialsError
    if isinstance(exc, NoCredentialsError):
        return SaveError(f"Cannot {what} {url}: no AWS credentials found", hint=_CREDENTIALS_HINT)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "unknown")
        if code == "NoSuchBucket":
            bucket = url[len("s3://"):].partition("/")[0]
            return SaveError(f"Cannot {what} {url}: the bucket '{bucket}' does not exist",
                             hint=f"create it first (aws s3 mb s3://{bucket}) or fix the destination")
        return SaveError(f"Cannot {what} {url}: S3 answered {code}", hint=_CREDENTIALS_HINT)
    return SaveError(f"Cannot {what} {url}: {type(exc).__name__}: {exc}")


def existing_keys(client: Any, bucket: str, prefix: str) -> List[str]:
    """Every object a save at ``s3://bucket/prefix`` would replace: the object ``prefix`` itself and
    everything under ``prefix/`` (the whole bucket for the root).

    Raises
    ------
    SaveError
        If the bucket does not exist or cannot be listed.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        if not prefix:
            return list(_s3_list_keys(client, bucket, ""))
        return [key for key in _s3_list_keys(client, bucket, prefix)
                if key == prefix or key.startswith(prefix + "/")]
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and _is_s3_not_found(exc) and \
                exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            return []
        raise _client_error(exc, "list", s3_url(bucket, prefix)) from exc


def upload_save(client: Any, local: str, bucket: str, prefix: str, replace: List[str]) -> List[str]:
    """Upload the save at ``local`` (a directory or a single file) to ``s3://bucket/prefix``.

    Objects in ``replace`` that the new save does not overwrite are deleted after the upload, so the
    destination holds exactly the new save. Returns the uploaded keys.

    Raises
    ------
    SaveError
        If a single-file save has no prefix to be stored under, or S3 refuses a request.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    url = s3_url(bucket, prefix)
    if os.path.isdir(local):
        uploads = []
        for root, dirs, files in os.walk(local):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                relative = os.path.relpath(path, local).replace(os.sep, "/")
                uploads.append((path, f"{prefix}/{relative}" if prefix else relative))
    elif prefix:
        uploads = [(local, prefix)]
    else:
        raise SaveError(f"A single-file save cannot be stored as the whole bucket {url}",
                        hint=f"name the object: destination: {bucket}/model.tar.gz")
    try:
        for path, key in uploads:
            client.upload_file(path, bucket, key)
        uploaded = {key for _, key in uploads}
        stale = [key for key in replace if key not in uploaded]
        for start in range(0, len(stale), _DELETE_BATCH):
            batch = stale[start:start + _DELETE_BATCH]
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch],
                                                                  "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise SaveError(f"Cannot delete the old object s3://{bucket}/{first.get('Key')}: "
                                f"{first.get('Code')}", hint="the new save is uploaded; remove it by hand")
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, "upload to", url) from exc
    logger.info("Uploaded %d file(s) to %s%s", len(uploads), url,
                f" and removed {len(stale)} old one(s)" if stale else "")
    return [key for _, key in uploads]
