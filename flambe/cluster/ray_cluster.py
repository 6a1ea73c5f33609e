"""RayCluster: an existing Ray cluster, reached by its address."""

from __future__ import annotations

import os
from typing import Any, Optional

from flambe.cluster.cluster import Cluster
from flambe.compile.errors import ConfigError, FlambeError


def use_available_token() -> None:
    """Present Ray's auth token to a cluster when one is available and ``RAY_AUTH_MODE`` is not set.

    Ray reads the mode when it is imported, so this must run before ``import ray`` (the CLI calls it
    first thing when ``--cluster`` is given).
    """
    token_file = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(token_file)):
        os.environ["RAY_AUTH_MODE"] = "token"


class RayCluster(Cluster):
    """An existing Ray cluster (``ray start --head`` on some machine, workers joined to it).

    The experiment's driver runs here and its trials on the cluster's nodes. Until flambe syncs
    results between machines, the experiment's ``save_path`` must be on storage every node sees (the
    same machine, or a shared file system).

    Parameters
    ----------
    address : str
        The cluster's address, e.g. ``127.0.0.1:6379`` or ``auto``.
    """

    def __init__(self, address: str) -> None:
        self.address = address

    def parse(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise ConfigError("!RayCluster needs an address, e.g. 'address: 127.0.0.1:6379'",
                              key_path=["address"])

    def connect(self, **kwargs: Any) -> None:
        """``ray.init`` against the cluster, with a clear error when it cannot be reached.

        Ray clusters authenticate drivers with a token by default; when one is available here
        (``RAY_AUTH_TOKEN``, or ``~/.ray/auth_token`` as ``ray start`` writes it) and ``RAY_AUTH_MODE`` is
        not set, flambe presents it (see :func:`use_available_token`).
        """
        use_available_token()
        import ray
        try:
            ray.init(address=self.address, logging_level="ERROR", **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            raise FlambeError(f"Cannot reach the Ray cluster at {self.address}: {exc}",
                              hint=f"is it running? 'ray status --address {self.address}' tells; a cluster with "
                                   "token authentication needs its token in RAY_AUTH_TOKEN or ~/.ray/auth_token")\
                from None

    def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> Optional[Any]:
        """Connect and print what the cluster offers."""
        self.connect()
        import ray
        try:
            resources = ray.cluster_resources()
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            print(f"Ray cluster at {self.address}: {len(nodes)} node(s), "
                  + ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()) if "node:" not in k))
            return resources
        finally:
            ray.shutdown()

    def submit(self, runnable: Any, force: bool = False, debug: bool = False, verbose: bool = False,
               dry_run: bool = False) -> Any:
        from flambe.runnable.cluster_runnable import ClusterRunnable
        if not isinstance(runnable, ClusterRunnable):
            raise ConfigError(f"A {type(runnable).__name__} cannot run on a cluster",
                              hint="only cluster runnables such as !Experiment can be given --cluster")
        if debug:
            raise ConfigError("--debug works only for local runs", hint="run without --cluster to debug")
        runnable.parse(remote=True)
        if dry_run:
            print(runnable.dry_run())
            return None
        runnable.cluster = self
        return runnable.run(force=force, debug=False, verbose=verbose)
