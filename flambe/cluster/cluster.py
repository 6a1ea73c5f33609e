"""Cluster: a runnable describing machines that another runnable (an Experiment) can run on."""

from __future__ import annotations

from typing import Any

from flambe.runnable.runnable import Runnable


class Cluster(Runnable, should_register=False):
    """Base of cluster descriptions given with ``flambe CONFIG --cluster cluster.yaml``.

    A cluster says how to reach a Ray cluster; :meth:`submit` runs a :class:`ClusterRunnable` there.
    """

    def submit(self, runnable: Any, force: bool = False, debug: bool = False, verbose: bool = False,
               dry_run: bool = False) -> Any:
        """Run ``runnable`` on this cluster."""
        raise NotImplementedError(f"{type(self).__name__} must implement submit()")
