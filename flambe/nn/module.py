"""flambe.nn.Module: a Component that is a torch.nn.Module."""

from __future__ import annotations

from typing import Iterator, Tuple

import torch

from flambe.compile.component import Component


class Module(Component, torch.nn.Module, should_register=False):
    """Base class of flambe models: build it from YAML, save it, load any part of it.

    Inherit from it instead of ``torch.nn.Module``; everything torch offers works unchanged.
    """

    @property
    def named_trainable_params(self) -> Iterator[Tuple[str, torch.nn.Parameter]]:
        """``(name, parameter)`` for every parameter that requires a gradient."""
        return ((name, p) for name, p in self.named_parameters() if p.requires_grad)

    @property
    def trainable_params(self) -> Iterator[torch.nn.Parameter]:
        """Every parameter that requires a gradient (what an optimizer should get)."""
        return (p for p in self.parameters() if p.requires_grad)

    def num_parameters(self, trainable: bool = False) -> int:
        """The number of scalar parameters (only trainable ones with ``trainable=True``)."""
        params = self.trainable_params if trainable else self.parameters()
        return sum(p.numel() for p in params)

    def gradient_norm(self, norm_type: float = 2.0) -> float:
        """The norm of all gradients taken together (0.0 before any backward pass)."""
        grads = [p.grad.detach() for p in self.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads]),
                                        norm_type).item()

    def parameter_norm(self, norm_type: float = 2.0) -> float:
        """The norm of all parameters taken together."""
        params = [p.detach() for p in self.parameters()]
        if not params:
            return 0.0
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p, norm_type) for p in params]),
                                        norm_type).item()

    def clip_params(self, threshold: float) -> None:
        """Clamp every trainable parameter into ``[-threshold, threshold]``."""
        with torch.no_grad():
            for p in self.trainable_params:
                p.clamp_(-threshold, threshold)

    def clip_gradient_norm(self, threshold: float) -> float:
        """Rescale gradients so their total norm is at most ``threshold``; return the norm before."""
        return float(torch.nn.utils.clip_grad_norm_(list(self.trainable_params), threshold))
