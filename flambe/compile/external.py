"""``!torch.X`` and ``!ray.X`` / ``!tune.X``: classes of other libraries, made components on first use.

Nothing here runs at ``import flambe``: the registry calls :func:`resolve_torch` / :func:`resolve_ray`
the first time such a tag is looked up. The generated classes live in this module under names like
``torch__Adam`` so pickle (DataLoader workers, Ray) finds them again in any process.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, List, Optional

from flambe.compile.component import Component, State

TORCH_MODULES = ("torch.nn", "torch.optim", "torch.optim.lr_scheduler")
RAY_MODULES = ("ray.tune.schedulers", "ray.tune.search")
# Search algorithms that live in their own sub-packages (they import optional libraries on use).
RAY_SEARCH_SUBMODULES = {
    "OptunaSearch": "ray.tune.search.optuna", "HyperOptSearch": "ray.tune.search.hyperopt",
    "BayesOptSearch": "ray.tune.search.bayesopt", "AxSearch": "ray.tune.search.ax",
    "HEBOSearch": "ray.tune.search.hebo", "NevergradSearch": "ray.tune.search.nevergrad",
    "ZOOptSearch": "ray.tune.search.zoopt", "TuneBOHB": "ray.tune.search.bohb",
}

_CACHE: Dict[str, type] = {}


def _public_classes(module_name: str) -> Dict[str, type]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = {}
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and not name.startswith("_"):
            out[name] = obj
    return out


def _optimizer_state(self: Any, state_dict: State, prefix: str, local_metadata: Dict[str, Any]) -> State:
    state_dict[prefix + "_wrapped_state"] = self.state_dict()
    return state_dict


def _load_optimizer_state(self: Any, state_dict: State, prefix: str, local_metadata: Dict[str, Any],
                          strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                          error_msgs: List[str]) -> None:
    key = prefix + "_wrapped_state"
    if key in state_dict:
        self.load_state_dict(state_dict[key])
    else:
        missing_keys.append(key)


def make_component(class_: type, namespace: str, registry: Any = None) -> type:
    """A Component subclass of ``class_`` registered as ``!namespace.ClassName``.

    ``torch.nn`` modules become :class:`flambe.nn.Module` subclasses (their tensors are state);
    objects with ``state_dict``/``load_state_dict`` (optimizers, LR schedulers) keep that state.
    """
    from flambe.compile.registry import current_registry
    key = f"{namespace}__{class_.__name__}"
    if key in _CACHE:
        return _CACHE[key]
    base: type = Component
    attrs: Dict[str, Any] = {"__module__": __name__, "__qualname__": key, "_flambe_wrapped": class_,
                             "__doc__": class_.__doc__}
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(class_, torch.nn.Module):
        from flambe.nn.module import Module
        base = Module
    elif hasattr(class_, "state_dict") and hasattr(class_, "load_state_dict"):
        attrs["_state"] = _optimizer_state
        attrs["_load_state"] = _load_optimizer_state
    # Ray's schedulers and searchers have their own ``metric``, ``save`` and ``restore``, which Tune calls:
    # theirs must win over Component's. torch classes keep flambe's methods first.
    bases = (class_, base) if namespace == "ray" else (base, class_)
    cls = type(class_.__name__, bases, attrs, should_register=False)
    _CACHE[key] = cls
    (registry or current_registry()).register(cls, class_.__name__, namespace)
    return cls


def resolve_torch(name: str) -> Optional[type]:
    """The component class for ``!torch.<name>``, or None."""
    for module_name in TORCH_MODULES:
        cls = _public_classes(module_name).get(name)
        if cls is not None:
            return make_component(cls, "torch")
    return None


def _torch_names() -> List[str]:
    return sorted({n for m in TORCH_MODULES for n in _public_classes(m)})


def resolve_ray(name: str) -> Optional[type]:
    """The component class for ``!ray.<name>`` / ``!tune.<name>`` (schedulers, search algorithms)."""
    for module_name in RAY_MODULES:
        cls = _public_classes(module_name).get(name)
        if cls is not None:
            return make_component(cls, "ray")
    if name in RAY_SEARCH_SUBMODULES:
        cls = getattr(importlib.import_module(RAY_SEARCH_SUBMODULES[name]), name, None)
        if cls is not None:
            return make_component(cls, "ray")
    return None


def _ray_names() -> List[str]:
    return sorted({n for m in RAY_MODULES for n in _public_classes(m)} | set(RAY_SEARCH_SUBMODULES))


resolve_torch.names = _torch_names  # type: ignore[attr-defined]
resolve_ray.names = _ray_names  # type: ignore[attr-defined]


def __getattr__(name: str) -> type:
    """Recreate generated classes by name (for unpickling in a fresh process)."""
    namespace, sep, cls_name = name.partition("__")
    resolver = {"torch": resolve_torch, "ray": resolve_ray}.get(namespace)
    cls = resolver(cls_name) if sep and resolver else None
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls
