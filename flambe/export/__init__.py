"""Build components after an experiment and export them (``!Builder``, ``!Exporter``).

Importing this package registers both tags; flambe also imports it before the first tag lookup
(:data:`flambe.compile.registry.BUILTIN_MODULES`), so configs can use them without an import.
"""

from flambe.export.builder import Builder
from flambe.export.exporter import Exporter

__all__ = ["Builder", "Exporter"]
