"""Model: a torch module whose parameters ("components") are swappable, that also works as a pipe.

A :class:`Model` separates its parameterization from its computation. Its *components* (torch Parameters,
tensors, Modules or any other object ``forward`` needs) are given at construction, initialized by
:meth:`Model.init_default_components`, or set later with :meth:`Model.update_components`; they are attributes
(``model.m``), and the tensors and modules among them are registered with torch, so they train with any
optimizer and save with ``get_state`` / ``flambe.save``. Components can be frozen and unfrozen by name.

Applied to a :class:`~flambe.pipeline.message.Message`, a Model returns a Message, after passing it through its
``input`` when that is callable (another Model), so ``f = Nonlinear(input=m); f(x)`` is ``f(m(x))``. With an
``input`` that is a Message, a pipe or a list of Messages, a Model is also a pipe-like source: iterating it
yields ``forward`` of each input block, ``model[rows]`` is ``forward`` of those input rows and ``len(model)``
the input's row count. Given tensors, it is an ordinary torch module (``forward(*tensors)``), so a Trainer can
train it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from flambe.nn.module import Module
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe
from flambe.pipeline.tensor_message import TensorMessage

__all__ = ["Model", "MissingComponentError"]

#: state key holding the names of the frozen parameters of a model's own components
FROZEN_KEY = "_frozen_parameters"


class MissingComponentError(KeyError):
    """A Model lacks components that it requires (raised at construction or by :meth:`Model.check_components`)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def as_component(value: Any) -> Any:
    """The form a component value is stored in.

    Parameters and Modules are kept; a floating (or complex) tensor becomes a trainable ``Parameter`` sharing
    its data; other tensors (ints, bools) stay tensors and become buffers (saved, never trained). A Python
    float, a numpy array or a list / tuple of numbers is first made a tensor with ``torch.as_tensor``. Anything
    else (ints, strings, objects, lists of objects) is kept as it is.
    """
    if isinstance(value, (torch.nn.Parameter, torch.nn.Module)):
        return value
    if isinstance(value, (float, np.ndarray, np.floating)) or (isinstance(value, (list, tuple)) and value):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            return value
    if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
        return torch.nn.Parameter(value.detach())
    return value


class Model(Module):
    """A statistical model: named components, a ``forward`` computation, pipe-like with respect to its input.

    Parameters
    ----------
    components : Mapping[str, Any], optional
        Name -> component (see :func:`as_component` for how values are stored). Components are attributes of
        the model. Names must be identifiers that do not start with ``_`` nor clash with an attribute of the
        class (``forward``, ``input``, ``training``...).
    input : Model, Pipe, Message or list of Messages, optional
        Where messages come from when the model is used as a pipe (iteration and indexing), and, when it is
        callable (another Model), what a Message given to the model goes through first. A torch Module input
        is registered as a sub-module, so it trains and saves with this model.

    Raises
    ------
    MissingComponentError
        A name in :attr:`required_components` is still missing after :meth:`init_default_components`.

    Notes
    -----
    Subclasses list the components they need in the class-level :attr:`required_components`, may provide
    defaults for some of them in :meth:`init_default_components` (called only when something is missing; it
    should set only what is missing), and implement :meth:`forward`. ``forward`` receives a Message (when the
    model is called with one, or used as a pipe) or the tensors of a batch; for a Message it returns a Message
    (or a dict / TensorMessage / DataFrame, which is wrapped in one) and must not change its argument in place.

    Examples
    --------
    >>> class Linear(Model):
    ...     required_components = ['m', 'b']
    ...     def init_default_components(self):
    ...         if 'b' not in self.components:
    ...             self.update_components({'b': [0.]})
    ...     def forward(self, message):
    ...         return message.merge({'y': self.m * message['x'] + self.b})
    >>> Linear({'m': [2.]})(Message(x=torch.tensor([1., 2.])))['y'].tolist()
    [2.0, 4.0]
    """

    #: components a subclass needs; missing ones are first offered to :meth:`init_default_components`
    required_components: ClassVar[Sequence[str]] = ()

    def __init__(self, components: Mapping[str, Any] | None = None, input: Any = None) -> None:
        super().__init__()
        self._component_names: list[str] = []
        self.input = input
        if components:
            self.update_components(components)
        if self.missing_components():
            self.init_default_components()
        self.check_components()

    # ------------------------------------------------------------------ components
    @property
    def components(self) -> dict[str, Any]:
        """Name -> component, in the order they were set."""
        return {name: getattr(self, name) for name in self._component_names}

    def _check_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"{type(self).__name__}: component names are identifiers not starting with '_', "
                             f"got {name!r}")
        if name in self._component_names:
            return
        taken = (name == "input" or hasattr(type(self), name) or name in self.__dict__ or name in self._modules
                 or name in self._parameters or name in self._buffers)
        if taken:
            raise ValueError(f"{type(self).__name__}: component {name!r} would hide the attribute of that name")

    def update_components(self, components: Mapping[str, Any]) -> None:
        """Set (or replace) components: Parameters, tensors and Modules are registered with torch.

        Parameters
        ----------
        components : Mapping[str, Any]
            Name -> value (stored as :func:`as_component` says).
        """
        if not isinstance(components, Mapping):
            raise TypeError(f"components must be a dict of name -> value, got {type(components).__name__}")
        for name in components:
            self._check_name(name)
        for name, value in components.items():
            value = as_component(value)
            if name in self._component_names:
                delattr(self, name)
            else:
                self._component_names.append(name)
            if isinstance(value, torch.nn.Parameter):
                self.register_parameter(name, value)
            elif isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
            elif isinstance(value, torch.nn.Module):
                self.add_module(name, value)
            else:
                setattr(self, name, value)

    def init_default_components(self) -> None:
        """Override point: set defaults for missing required components (the base version sets nothing)."""

    def missing_components(self, components: Iterable[str] | None = None) -> list[str]:
        """The required components that are absent (from ``components`` names, default this model's)."""
        present = set(self._component_names if components is None else components)
        return [name for name in self.required_components if name not in present]

    def check_components(self, components: Iterable[str] | None = None) -> None:
        """Raise :class:`MissingComponentError` naming every missing required component.

        Parameters
        ----------
        components : Iterable[str], optional
            Names to check instead of this model's components (e.g. the keys of a dict about to be given).
        """
        missing = self.missing_components(components)
        if missing:
            raise MissingComponentError(
                f"{type(self).__name__} is missing required components {missing} (required: "
                f"{list(self.required_components)}; given: {self._component_names}); pass them in 'components' "
                f"or give them defaults in init_default_components()")

    def _component_parameters(self, names: str | Iterable[str] | None) -> list[tuple[str, torch.nn.Parameter]]:
        """``(qualified name, parameter)`` of the named components (all when None); unknown names raise."""
        if isinstance(names, str):
            names = [names]
        selected = list(self._component_names) if names is None else list(names)
        unknown = [n for n in selected if n not in self._component_names]
        if unknown:
            raise KeyError(f"{type(self).__name__} has no components {unknown}; it has {self._component_names}")
        out: list[tuple[str, torch.nn.Parameter]] = []
        for name in selected:
            value = getattr(self, name)
            if isinstance(value, torch.nn.Parameter):
                out.append((name, value))
            elif isinstance(value, torch.nn.Module):
                out.extend((f"{name}.{sub}", p) for sub, p in value.named_parameters())
        return out

    def freeze(self, names: str | Iterable[str] | None = None) -> Model:
        """Stop gradient updates of the named components (all when None): ``requires_grad = False``.

        A Module component is frozen whole; buffers and plain objects have no gradients and are skipped.
        The frozen flags are part of the model's state. Returns the model.
        """
        for _, p in self._component_parameters(names):
            p.requires_grad_(False)
        return self

    def unfreeze(self, names: str | Iterable[str] | None = None) -> Model:
        """Let the named components (all when None) train again: ``requires_grad = True``. Returns the model."""
        for _, p in self._component_parameters(names):
            p.requires_grad_(True)
        return self

    def _state(self, state_dict: Any, prefix: str, local_metadata: dict[str, Any]) -> Any:
        state_dict[prefix + FROZEN_KEY] = sorted(n for n, p in self._component_parameters(None) if not p.requires_grad)
        return state_dict

    def _load_state(self, state_dict: Any, prefix: str, local_metadata: dict[str, Any], strict: bool,
                    missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        if prefix + FROZEN_KEY not in state_dict:
            missing_keys.append(prefix + FROZEN_KEY)
            return
        frozen = set(state_dict[prefix + FROZEN_KEY])
        for name, p in self._component_parameters(None):
            p.requires_grad_(name not in frozen)

    # ------------------------------------------------------------------ computation
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation: a Message in, a Message out (or tensors in, tensors out). Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(message)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A Message (after the input model, if any) -> ``forward`` -> a Message; tensors -> ``forward(*tensors)``."""
        if len(args) == 1 and not kwargs and isinstance(args[0], Message):
            message = args[0]
            if callable(self.input):
                message = _as_message(self.input(message), self.input)
            return self._apply(message)
        return super().__call__(*args, **kwargs)

    def _apply(self, message: Message) -> Message:
        """``forward`` of one Message, through torch's call machinery (hooks), as a Message."""
        return _as_message(torch.nn.Module.__call__(self, message), self)

    # ------------------------------------------------------------------ pipe-like use of the input
    def _source(self) -> Any:
        if self.input is None:
            raise TypeError(f"{type(self).__name__} has no input to read from: give it input=... to use it as a pipe")
        return self.input

    def __iter__(self) -> Iterator[Message]:
        """``forward`` of each block of the input (a Message is one block); resets the input first."""
        src = self._source()
        if isinstance(src, Message):
            yield self._apply(src)
            return
        for block in src:
            yield self._apply(block if isinstance(block, Message) else Message(block))

    def __getitem__(self, index: Any) -> Message:
        """``forward`` of the input's rows at ``index`` (any row index a Message takes)."""
        if isinstance(index, str) or (isinstance(index, (list, tuple)) and index and isinstance(index[0], str)):
            raise TypeError(f"{type(self).__name__}[...] selects rows; take columns from the resulting Message")
        src = self._source()
        rows = Pipe(src)[index] if isinstance(src, (list, tuple)) else src[index]
        return self._apply(rows if isinstance(rows, Message) else Message(rows))

    def __len__(self) -> int:
        """The input's row count (``forward`` is expected to keep one output row per input row)."""
        src = self._source()
        return len(Pipe(src)) if isinstance(src, (list, tuple)) else len(src)

    def __bool__(self) -> bool:
        return True

    @property
    def indexable(self) -> bool:
        """Whether ``model[rows]`` and ``len(model)`` work (the input is indexable)."""
        src = self.input
        if isinstance(src, (Message, list, tuple)):
            return True
        return bool(getattr(src, "indexable", False))

    def reset(self) -> None:
        """Reset the input (when it has a position), so the next iteration starts from the beginning."""
        if hasattr(self.input, "reset"):
            self.input.reset()


def _as_message(value: Any, who: Any) -> Message:
    if isinstance(value, Message):
        return value
    if isinstance(value, (Mapping, TensorMessage, pd.DataFrame)):
        return Message(value)
    raise TypeError(f"{type(who).__name__}.forward must return a Message (or a dict of columns) when given a "
                    f"Message, got {type(value).__name__}")
