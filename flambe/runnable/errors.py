"""Errors a runnable raises when it ran but did not succeed."""

from __future__ import annotations

from flambe.compile.errors import FlambeError


class UnsuccessfulRunnableError(FlambeError):
    """The runnable ran, but part of it failed (a trial of an experiment, say); the CLI exits 1."""

    exit_code = 1
