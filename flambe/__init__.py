"""flambe: a YAML-config-driven experiment runner for PyTorch.

The public API is loaded lazily, so ``import flambe`` (and ``flambe --help``) stays fast.
"""

from typing import Any

__version__ = "0.5.0"

_LAZY = {
    "load": ("flambe.compile.serialization", "load"),
    "save": ("flambe.compile.serialization", "save"),
    "Component": ("flambe.compile.component", "Component"),
    "Schema": ("flambe.compile.schema", "Schema"),
    "log": ("flambe.logging", "log"),
}

__all__ = ["load", "save", "log", "Component", "Schema", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flambe' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
