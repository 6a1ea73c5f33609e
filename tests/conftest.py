"""Shared pytest configuration for the flambe test suite."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register custom markers so ``--strict-markers`` accepts them."""
    config.addinivalue_line(
        "markers",
        "integration: tests that start local servers (moto S3, HTTP) or touch the filesystem",
    )
