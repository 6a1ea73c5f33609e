"""Neural network building blocks."""

from flambe.nn.module import Module

__all__ = ["Module"]
