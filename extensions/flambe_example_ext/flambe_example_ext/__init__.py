"""An example flambe extension: ``!flambe_example_ext.Greeter`` and ``!flambe_example_ext.WriteReport``."""

from flambe_example_ext.components import Greeter, ScaledLinear
from flambe_example_ext.runnables import WriteReport

__all__ = ["Greeter", "ScaledLinear", "WriteReport"]
