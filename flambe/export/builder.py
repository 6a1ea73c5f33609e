"""Builder: build a component (an inference engine, a bundle of trained artifacts) and save it."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any, Optional

from flambe.compile.component import Component
from flambe.compile.errors import ConfigError, Location, SaveError
from flambe.compile.schema import Schema
from flambe.runnable.runnable import MissingSecretsError, Runnable

logger = logging.getLogger(__name__)

STORAGES = ("local", "s3")


class Builder(Runnable):
    """Build a :class:`~flambe.compile.Component` and save it in the flambe format, locally or to S3.

    A builder decouples inference from experimentation: it builds, for example, an inference engine
    around models an experiment saved (``!ext.Model.load_from_path``), without rerunning anything.
    The result loads back with ``flambe.load(destination)`` (``flambe.load("s3://bucket/folder")``).

    Parameters
    ----------
    component : Schema
        The component to build, as written under ``component:`` (a component tag). From Python an
        already-built Component is accepted too.
    destination : str
        Where to save: a local path, or for S3 ``my-bucket``, ``my-bucket/folder`` or
        ``s3://my-bucket/folder``.
    storage : str
        ``'local'`` (default) or ``'s3'``.
    compress : bool
        Save a ``.tar.gz`` of the save directory (for S3, the object ``folder`` itself).
    pickle_only : bool
        Save a single pickle file instead of the directory tree.
    pickle_module, pickle_protocol : optional
        Accepted so Flambé 0.4.5 configs keep working, and ignored: flambe always saves with torch's
        pickle at :data:`flambe.compile.serialization.DEFAULT_PROTOCOL` (a warning says so).

    Attributes
    ----------
    compiled_component : Component or None
        The built component, once :meth:`run` (or :meth:`build`) has run.

    Notes
    -----
    An existing, non-empty destination is replaced only with ``force`` (``flambe config.yaml --force``).
    Locally the replacement is atomic. On S3 the new files are uploaded first, then the objects of the
    old save that were not overwritten are deleted; with ``force`` and a whole-bucket destination that
    means every other object in the bucket.

    S3 credentials come from the standard AWS chain (environment, ``~/.aws``, instance role) unless the
    secrets file has an ``[AWS]`` section with ``ACCESS_KEY_ID`` and ``SECRET_ACCESS_KEY`` (optional
    ``SESSION_TOKEN`` and ``REGION``). The endpoint follows ``AWS_ENDPOINT_URL`` as usual.

    Examples
    --------
    ::

        !Builder
        storage: s3
        destination: my-bucket/engines/v1
        component: !ClassifierEngine
          model: !ext.MyBinaryClassifier.load_from_path
            path: /path/to/saved/model
    """

    def __init__(self, component: Any, destination: str, storage: str = "local", compress: bool = False,
                 pickle_only: bool = False, pickle_module: Any = None, pickle_protocol: Optional[int] = None) -> None:
        self.component = component
        self.destination = destination
        self.storage = storage
        self.compress = compress
        self.pickle_only = pickle_only
        self.pickle_module = pickle_module
        self.pickle_protocol = pickle_protocol
        self.compiled_component: Optional[Component] = None
        if pickle_module is not None or pickle_protocol is not None:
            logger.warning("Builder: pickle_module and pickle_protocol are ignored; flambe saves with torch's "
                           "pickle and its own protocol")

    # ------------------------------------------------------------------ checks
    def _location(self, key: str) -> Optional[Location]:
        schema = getattr(self, "_flambe_schema", None)
        if schema is None:
            return None
        return schema.key_locations.get(key, schema.location)

    def _error(self, key: str, message: str, hint: Optional[str] = None) -> ConfigError:
        return ConfigError(f"'!Builder' {message}", location=self._location(key), key_path=[key], hint=hint)

    def parse(self) -> None:
        """Check the arguments before anything is built.

        Raises
        ------
        ConfigError
            For an unknown storage, a component that is not a component tag, a missing destination,
            ``compress`` together with ``pickle_only``, or a destination that does not fit the storage.
        """
        storage = str(self.storage).strip().lower()
        if storage not in STORAGES:
            raise self._error("storage", f"has unknown storage {self.storage!r}",
                              hint="storage is one of: " + ", ".join(repr(s) for s in STORAGES))
        self.storage = storage
        component = self.component
        if isinstance(component, Schema):
            if not (isinstance(component.component_subclass, type)
                    and issubclass(component.component_subclass, Component)):
                raise self._error("component", f"can only build components, not '!{component.tag}'",
                                  hint="subclass flambe.compile.Component (or use !Exporter to group objects)")
        elif not isinstance(component, Component):
            kind = f"the Runnable '{type(component).__name__}'" if isinstance(component, Runnable) else \
                f"a {type(component).__name__} ({component!r})"
            raise self._error("component", f"needs a component tag under 'component', got {kind}",
                              hint="write 'component: !MyComponent' followed by its arguments")
        if not isinstance(self.destination, str) or not self.destination.strip():
            raise self._error("destination", "needs a destination: a local path or an S3 bucket[/folder]")
        if self.compress and self.pickle_only:
            raise self._error("compress", "cannot both compress and pickle_only",
                              hint="compress writes a .tar.gz of the save directory, pickle_only a single "
                                   "pickle: choose one")
        if storage == "local" and self.destination.strip().lower().startswith("s3://"):
            raise self._error("destination", f"saves locally, but the destination {self.destination!r} is an "
                                             "S3 URL", hint="add 'storage: s3'")
        if storage == "s3":
            from flambe.export.s3 import parse_s3_destination
            try:
                bucket, prefix = parse_s3_destination(self.destination)
            except ValueError as exc:
                raise self._error("destination", f"has an invalid S3 destination: {exc}",
                                  hint="write my-bucket, my-bucket/folder or s3://my-bucket/folder") from None
            if (self.compress or self.pickle_only) and not prefix:
                raise self._error("destination", "writes a single file, which needs a name inside the bucket",
                                  hint=f"write destination: {bucket}/model.tar.gz")

    # ------------------------------------------------------------------ running
    def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> None:
        """Build the component and save it to the destination.

        The destination is checked before building, so a build never runs for nothing.

        Raises
        ------
        SaveError
            If the destination holds something and ``force`` is False, or the save fails.
        """
        self.parse()
        self.check_destination(force)
        self.build()
        if self.storage == "local":
            self.save_local(force)
        else:
            self.save_s3(force)

    def dry_run(self) -> str:
        """Describe what :meth:`run` would do, without building, saving or contacting S3."""
        component = self.component
        tag = f"!{component.tag}" if isinstance(component, Schema) else f"a built {type(component).__name__}"
        if self.storage == "s3":
            from flambe.export.s3 import parse_s3_destination, s3_url
            where = s3_url(*parse_s3_destination(self.destination))
        else:
            where = self._local_path()
        form = "a .tar.gz" if self.compress else "a pickle" if self.pickle_only else "a save directory"
        return f"Builder would build {tag} and save it to {where} as {form}; nothing was run."

    def build(self) -> Component:
        """Build the component (once) and return it."""
        if self.compiled_component is None:
            component = self.component
            if isinstance(component, Schema):
                logger.info("Building '!%s'", component.tag)
                component = component()
            self.compiled_component = component
        return self.compiled_component

    def check_destination(self, force: bool) -> None:
        """Raise :class:`SaveError` if the destination holds something and ``force`` is False."""
        if force:
            return
        if self.storage == "local":
            path = self._local_path()
            if _non_empty(path):
                raise _exists_error(path)
        else:
            self._s3_existing(force=False)

    def save_local(self, force: bool = False) -> str:
        """Save the built component to the local destination; return the absolute path.

        ``force`` replaces an existing, non-empty destination (atomically); an empty directory is
        replaced either way.
        """
        component = self.build()
        path = self._local_path()
        if _non_empty(path) and not force:
            raise _exists_error(path)
        from flambe.compile.serialization import save
        save(component, path, compress=bool(self.compress), pickle_only=bool(self.pickle_only),
             overwrite=os.path.lexists(path))
        logger.info("Saved '%s' to %s", type(component).__name__, path)
        return path

    def save_s3(self, force: bool = False) -> str:
        """Save the built component to ``s3://bucket/prefix``; return that URL.

        A save directory is uploaded file by file under ``prefix/``; a ``.tar.gz`` (``compress``) or a
        pickle (``pickle_only``) becomes the object ``prefix``. ``force`` replaces an existing save
        (the objects of the old one that the new one does not overwrite are deleted).
        """
        from flambe.compile.serialization import save
        from flambe.export.s3 import parse_s3_destination, s3_url, upload_save
        component = self.build()
        bucket, prefix = parse_s3_destination(self.destination)
        client, existing = self._s3_existing(force)
        with tempfile.TemporaryDirectory(prefix="flambe-builder-") as tmp:
            name = (prefix.rsplit("/", 1)[-1] if prefix else bucket) or "save"
            local = os.path.join(tmp, name)
            save(component, local, compress=bool(self.compress), pickle_only=bool(self.pickle_only))
            upload_save(client, local, bucket, prefix, existing)
        return s3_url(bucket, prefix)

    def _s3_existing(self, force: bool) -> Any:
        from flambe.export.s3 import existing_keys, parse_s3_destination, s3_url
        bucket, prefix = parse_s3_destination(self.destination)
        client = self.get_boto_session().client("s3")
        existing = existing_keys(client, bucket, prefix)
        if existing and not force:
            raise _exists_error(s3_url(bucket, prefix), count=len(existing))
        return client, existing

    def get_boto_session(self) -> Any:
        """A ``boto3.Session``: from the ``[AWS]`` secrets when given, else the standard credential chain.

        Raises
        ------
        MissingSecretsError
            If the ``[AWS]`` section has only one of ``ACCESS_KEY_ID`` and ``SECRET_ACCESS_KEY``.
        """
        import boto3
        if not self.config.has_section("AWS"):
            return boto3.Session()
        aws = self.config["AWS"]
        key_id, secret = aws.get("ACCESS_KEY_ID"), aws.get("SECRET_ACCESS_KEY")
        region = aws.get("REGION") or None
        if bool(key_id) != bool(secret):
            raise MissingSecretsError("The [AWS] secrets need both ACCESS_KEY_ID and SECRET_ACCESS_KEY",
                                      hint="add the missing one, or remove both to use the standard AWS "
                                           "credentials (environment, ~/.aws)")
        if not key_id:
            return boto3.Session(region_name=region)
        return boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                             aws_session_token=aws.get("SESSION_TOKEN") or None, region_name=region)

    def _local_path(self) -> str:
        return os.path.abspath(os.path.expanduser(self.destination.strip()))


def _non_empty(path: str) -> bool:
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return os.path.lexists(path)


def _exists_error(where: str, count: Optional[int] = None) -> SaveError:
    what = f" ({count} object{'s' if count != 1 else ''})" if count is not None else ""
    return SaveError(f"The destination '{where}' already exists and is not empty{what}",
                     hint="run with --force to replace it (Builder.run(force=True) from Python), "
                          "or choose another destination")
