"""Small helpers shared by the nn modules."""

from __future__ import annotations

import inspect
from typing import Any


def accepts_argument(module: Any, name: str) -> bool:
    """Whether ``module``'s ``forward`` (or the callable itself) has a parameter called ``name``."""
    target = getattr(module, "forward", module)
    try:
        return name in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
