"""Small helpers shared by the Trainer, the Evaluator and the DistillationTrainer."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch


def resolve_device(device: Optional[str]) -> torch.device:
    """``device`` as a :class:`torch.device`; None means ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def batch_to_device(batch: Sequence[Any], device: torch.device) -> Tuple[Any, ...]:
    """Move every tensor of a batch (a tensor or a tuple of tensors) to ``device``."""
    if isinstance(batch, torch.Tensor):
        batch = (batch,)
    non_blocking = device.type == "cuda"
    return tuple(t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t for t in batch)


def model_output(model: torch.nn.Module, batch: Sequence[Any]) -> Tuple[Any, Any]:
    """``(pred, target)``: flambe models take ``forward(*inputs, target)`` and return both.

    Raises
    ------
    TypeError
        When the model returns something else, with what to change.
    """
    out = model(*batch)
    if isinstance(out, tuple) and len(out) == 2:
        return out
    raise TypeError(f"{type(model).__name__}.forward was given {len(batch)} batch columns (the last one is the "
                    f"target) and returned {type(out).__name__}; it must return (prediction, target) when "
                    "given a target, as TextClassifier does, or override the trainer's _compute_loss")
