"""An example flambe extension: components (``Greeter``, ``ScaledLinear``, ``FitLinear``, ``Evaluate``) and a
runnable (``WriteReport``)."""

from flambe_example_ext.components import Evaluate, FitLinear, Greeter, ScaledLinear
from flambe_example_ext.runnables import WriteReport

__all__ = ["Evaluate", "FitLinear", "Greeter", "ScaledLinear", "WriteReport"]
