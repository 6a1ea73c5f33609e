"""ClusterRunnable: a runnable that can also run on a cluster."""

from __future__ import annotations

from typing import Any, Optional

from flambe.runnable.runnable import Runnable


class ClusterRunnable(Runnable, should_register=False):
    """A runnable that can run on a cluster as well as locally (``flambe cfg.yaml --cluster c.yaml``).

    Parameters
    ----------
    env : optional
        The cluster environment; set when the runnable runs remotely, None locally.
    """

    def __init__(self, env: Optional[Any] = None, **kwargs: Any) -> None:
        self.env = env
        self.cluster: Optional[Any] = None  # the cluster it was submitted to (set by Cluster.submit)
