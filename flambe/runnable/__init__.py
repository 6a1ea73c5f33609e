"""Top-level runnable objects."""

from flambe.runnable.runnable import MissingSecretsError, Runnable

__all__ = ["Runnable", "MissingSecretsError"]
