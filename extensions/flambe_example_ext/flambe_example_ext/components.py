"""Components of the example extension."""

import torch

from flambe.compile import Component, registrable_factory
from flambe.nn import Module


class Greeter(Component):
    """Builds a greeting; ``!flambe_example_ext.Greeter.shouting`` is a factory."""

    def __init__(self, name: str, punctuation: str = "!") -> None:
        self.name = name
        self.punctuation = punctuation

    @property
    def greeting(self) -> str:
        return f"Hello, {self.name}{self.punctuation}"

    @registrable_factory
    @classmethod
    def shouting(cls, name: str) -> "Greeter":
        return cls(name.upper(), "!!!")


class ScaledLinear(Module):
    """A linear layer whose output is multiplied by a registered, saved ``scale``."""

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features)
        self.scale = scale
        self.register_attrs("scale")

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return self.linear(data) * self.scale
