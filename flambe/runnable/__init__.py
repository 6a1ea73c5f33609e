"""Top-level runnable objects."""

from flambe.runnable.cluster_runnable import ClusterRunnable
from flambe.runnable.errors import UnsuccessfulRunnableError
from flambe.runnable.runnable import MissingSecretsError, Runnable

__all__ = ["Runnable", "ClusterRunnable", "MissingSecretsError", "UnsuccessfulRunnableError"]
