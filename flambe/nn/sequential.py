"""Sequential: named submodules applied in order (YAML gives them as a mapping)."""

from __future__ import annotations

from typing import Any, Optional

from torch import Tensor, nn

from flambe.nn.module import Module
from flambe.nn.utils import accepts_argument


class Sequential(Module):
    """Like ``torch.nn.Sequential``, but built from keyword arguments: ``Sequential(a=..., b=...)``.

    Parameters
    ----------
    **kwargs : Module
        The submodules, in the order given; each is registered under its keyword (its state lives
        under that name).

    Notes
    -----
    forward(data, padding_mask=None): each module gets the previous output; a module whose
    ``forward`` takes ``padding_mask`` also gets the mask (when one is given).

    """

    def __init__(self, **kwargs: nn.Module) -> None:
        super().__init__()
        if not kwargs:
            raise ValueError("Sequential needs at least one module")
        for name, module in kwargs.items():
            if not isinstance(module, nn.Module):
                raise TypeError(f"Sequential argument '{name}' is a {type(module).__name__}, not a torch module")
            self.add_module(name, module)
        self._takes_mask = {name: accepts_argument(module, "padding_mask") for name, module in kwargs.items()}

    def forward(self, data: Tensor, padding_mask: Optional[Tensor] = None) -> Any:
        """Apply the modules in order to ``data``."""
        out: Any = data
        for name, module in self._modules.items():
            if padding_mask is not None and self._takes_mask[name]:
                out = module(out, padding_mask=padding_mask)
            else:
                out = module(out)
        return out
