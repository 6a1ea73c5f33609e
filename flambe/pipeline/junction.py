"""Junctions: pipes with several inputs (components), and the rule for combining them.

A junction does not forward attributes upstream (with several inputs that would be ambiguous), except the
:class:`SwitchJunction`, which routes everything to its selected component. Junctions are picklable and keep
their position and random state, plus the state of each component, in :meth:`get_state`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flambe.compile.component import Component, State
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe

_META = "__metadata__"


class Junction(Pipe):
    """Base of the junctions: a dict of named components (pipes, or Messages / lists wrapped in a Pipe).

    Parameters
    ----------
    components : dict
        name -> component.
    """

    def __init__(self, components: Mapping[str, Any]) -> None:
        if not isinstance(components, Mapping) or not components:
            raise ValueError(f"{type(self).__name__} needs a non-empty dict of components")
        bad = [k for k in components if not isinstance(k, str) or "." in k]
        if bad:
            raise ValueError(f"component names must be strings without '.', got {bad}")
        bad = [k for k, v in components.items() if not isinstance(v, (Pipe, Message)) and not hasattr(v, "__iter__")]
        if bad:
            raise TypeError(f"components {bad} are neither pipes, Messages nor iterables of Messages")
        super().__init__({k: v if isinstance(v, Pipe) else Pipe(v) for k, v in components.items()})

    @property
    def components(self) -> dict[str, Any]:
        """name -> component."""
        return self.input

    @property
    def indexable(self) -> bool:
        return False

    def _state(self, state_dict: State, prefix: str, local_metadata: dict[str, Any]) -> State:
        super()._state(state_dict, prefix, local_metadata)
        for name, comp in self.components.items():
            if isinstance(comp, Component):
                sub = comp.get_state()
                base = f"{prefix}components.{name}."
                for key, value in sub.items():
                    state_dict[base + key] = value
                state_dict[base + _META] = {k: dict(v) for k, v in sub._metadata.items()}
        return state_dict

    def _load_state(self, state_dict: State, prefix: str, local_metadata: dict[str, Any], strict: bool,
                    missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        super()._load_state(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        for name, comp in self.components.items():
            if not isinstance(comp, Component):
                continue
            base = f"{prefix}components.{name}."
            sub = State((k[len(base):], v) for k, v in state_dict.items()
                        if k.startswith(base) and k != base + _META)
            sub._metadata.update(state_dict.get(base + _META, {}))
            if sub:
                comp.load_state(sub, strict=strict)
            else:
                missing_keys.append(base[:-1])


# ------------------------------------------------------------------------------------------ hubs
class HubJunction(Junction):
    """Yields the blocks of its components in turn (round-robin), skipping exhausted ones, until all are."""

    def __init__(self, components: Mapping[str, Any]) -> None:
        super().__init__(components)
        self.check_inputs()
        self._available = list(self.components)
        self._cursor = 0

    def check_inputs(self) -> None:
        """Check that every component implements ``__next__`` and ``reset``."""
        bad = [k for k, c in self.components.items() if not (hasattr(c, "__next__") and hasattr(c, "reset"))]
        if bad:
            raise TypeError(f"{type(self).__name__}: components {bad} cannot be iterated and reset")

    def sample_inputs(self) -> str:
        """The key of the component to step through next."""
        self._cursor %= len(self._available)
        return self._available[self._cursor]

    def _stepped(self, key: str) -> None:
        self._cursor += 1

    def _exhausted(self, key: str) -> bool:
        """Drop an exhausted component; return whether the epoch goes on."""
        self._available.remove(key)
        return bool(self._available)

    def __next__(self) -> Message:
        while self._available:
            key = self.sample_inputs()
            try:
                block = next(self.components[key])
            except StopIteration:
                if not self._exhausted(key):
                    break
                continue
            self._stepped(key)
            return block
        self._available = []
        raise StopIteration

    def reset(self) -> None:
        super().reset()
        self._available = list(self.components)
        self._cursor = 0

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "available": list(self._available), "cursor": self._cursor}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self._available = [str(k) for k in state["available"]]
        self._cursor = int(state["cursor"])


class RandomHubJunction(HubJunction):
    """Steps through a randomly chosen component each time, with probabilities proportional to ``weights``.

    Exhausted components drop out (the others' weights are renormalized) until all are exhausted. The
    choices of epoch ``e`` come from a generator seeded by ``(seed, e)``; an epoch that has been read from is
    followed by the next one on :meth:`reset`. The generator's state is part of the pipe's state.

    Parameters
    ----------
    components : dict
    weights : dict or sequence of float, optional
        Per component (default equal).
    seed : int
    """

    def __init__(self, components: Mapping[str, Any], weights: Mapping[str, float] | Sequence[float] | None = None,
                 seed: int = 0) -> None:
        super().__init__(components)
        keys = list(self.components)
        if weights is None:
            w = [1.0] * len(keys)
        elif isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(keys))
            if unknown:
                raise ValueError(f"weights name unknown components {unknown}")
            w = [float(weights.get(k, 0.0)) for k in keys]
        else:
            w = [float(x) for x in weights]
            if len(w) != len(keys):
                raise ValueError(f"{len(w)} weights for {len(keys)} components")
        if any(x < 0 for x in w) or not sum(w) > 0:
            raise ValueError(f"weights must be non-negative and not all zero, got {w}")
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.weights = dict(zip(keys, w))
        self.seed = int(seed)
        self._epoch = 0
        self._started = False
        self._rng = np.random.default_rng([self.seed, 0])
        self._available = [k for k in keys if self.weights[k] > 0]

    def sample_inputs(self) -> str:
        w = np.asarray([self.weights[k] for k in self._available], dtype=np.float64)
        cdf = np.cumsum(w / w.sum())
        i = int(np.searchsorted(cdf, self._rng.random(), side="right"))
        return self._available[min(i, len(self._available) - 1)]

    def __next__(self) -> Message:
        self._started = True
        return super().__next__()

    def reset(self) -> None:
        super().reset()
        if self._started:
            self._epoch += 1
        self._started = False
        self._available = [k for k in self.components if self.weights[k] > 0]
        self._rng = np.random.default_rng([self.seed, self._epoch])

    def _pipe_state(self) -> dict[str, Any]:
        state = super()._pipe_state()
        state.update(epoch=self._epoch, started=self._started, rng=_rng_state(self._rng))
        return state

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self._epoch, self._started = int(state["epoch"]), bool(state["started"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = _rng_restore(state["rng"])


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state with its 128-bit integers as strings (safe for ``torch.load(weights_only)``)."""
    st = rng.bit_generator.state
    return {"bit_generator": st["bit_generator"], "state": str(st["state"]["state"]),
            "inc": str(st["state"]["inc"]), "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _rng_restore(saved: dict[str, Any]) -> dict[str, Any]:
    return {"bit_generator": saved["bit_generator"], "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
            "has_uint32": int(saved["has_uint32"]), "uinteger": int(saved["uinteger"])}


class ClockworkHubJunction(HubJunction):
    """Steps through its components in a fixed cyclic order (the dict's order).

    Parameters
    ----------
    components : dict
    stop : {'any', 'all'}
        ``'any'`` (default): the epoch ends as soon as one component is exhausted, so every component gives
        the same number of blocks (the components before the exhausted one in the cycle give one more), like
        ``zip``. ``'all'``: exhausted components are skipped until all are, like :class:`HubJunction`.
    """

    def __init__(self, components: Mapping[str, Any], stop: str = "any") -> None:
        if stop not in ("any", "all"):
            raise ValueError(f"stop must be 'any' or 'all', got {stop!r}")
        super().__init__(components)
        self.stop = stop

    def sample_inputs(self) -> str:
        """Loops through the components until finding one that is available."""
        return super().sample_inputs()

    def _exhausted(self, key: str) -> bool:
        if self.stop == "any":
            return False
        return super()._exhausted(key)


# ------------------------------------------------------------------------------------------ switch
class SwitchJunction(Junction):
    """Routes every call (iteration, indexing, ``len``, ``reset``, any attribute) to the selected component.

    Switch by setting :attr:`route` to a component's name.

    Parameters
    ----------
    components : dict
    key : str
        The component selected first.
    """

    def __init__(self, components: Mapping[str, Any], key: str) -> None:
        super().__init__(components)
        self._route = ""
        self.route = key

    @property
    def route(self) -> str:
        """The name of the selected component (settable)."""
        return self._route

    @route.setter
    def route(self, key: str) -> None:
        if key not in self.components:
            raise KeyError(f"SwitchJunction has no component {key!r}; components are {list(self.components)}")
        self._route = key

    @property
    def component(self) -> Any:
        """The selected component."""
        return self.components[self._route]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "input" not in self.__dict__ or "_route" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        try:
            return getattr(self.component, name)
        except AttributeError as err:
            raise AttributeError(f"'SwitchJunction' (route {self._route!r}) -> {err}") from None

    def __next__(self) -> Message:
        return next(self.component)

    def __getitem__(self, index: Any) -> Message:
        return self.component[index]

    def __len__(self) -> int:
        return len(self.component)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.component(*args, **kwargs)

    @property
    def indexable(self) -> bool:
        comp = self.component
        return comp.indexable if isinstance(comp, Pipe) else True

    @property
    def block_size(self) -> int | None:
        return getattr(self.component, "block_size", None)

    def block_offsets(self) -> np.ndarray | None:
        comp = self.component
        return comp.block_offsets() if isinstance(comp, Pipe) else None

    def reset(self) -> None:
        """Reset the selected component only."""
        self._position, self._resume = 0, False
        self.component.reset()

    def _pipe_state(self) -> dict[str, Any]:
        return {"position": self._position, "route": self._route}

    def _set_pipe_state(self, state: dict[str, Any]) -> None:
        super()._set_pipe_state(state)
        self.route = str(state["route"])
