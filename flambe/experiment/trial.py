"""One trial: build a variant, call ``run()`` step by step, checkpoint after every call.

This is the part of an experiment that runs inside a Ray Tune worker (or in the driver with
``debug: true``). It loads upstream variants from their checkpoints, never re-running them, and
writes only inside the variant's own directory: its checkpoint, its log and, on failure, its error.
Progress and results are recorded by the driver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pdb
import pickle
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from flambe.compile.schema import Builder, Schema
from flambe.logging import TrialLogging

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_NAME = "checkpoint.flambe"
LOG_FILE = "log.txt"
ERROR_FILE = "error.txt"
MARKER_FILE = "trial.json"


def checkpoint_path(variant_dir: str) -> str:
    """Where a variant's flambe checkpoint lives."""
    return os.path.join(variant_dir, CHECKPOINT_DIR, CHECKPOINT_NAME)


@dataclass
class TrialSpec:
    """Everything a worker needs to run one variant (picklable).

    Attributes
    ----------
    stage : str
        The stage name (the link root of the stage's own config).
    variant : Variant
        The variant (its ``schema`` is the config with options resolved).
    variant_dir : str
        The variant's output directory.
    upstream : dict
        Linked upstream stage → the checkpoint directory of the variant it uses.
    resources : dict
        Resource name → value (local paths are absolute).
    seed : int
        The experiment's seed; with the variant's id it seeds ``random``, numpy and torch before the
        variant is built, so its initial weights and dropout masks are the same on every run.
    """

    stage: str
    variant: Any
    variant_dir: str
    upstream: Dict[str, str] = field(default_factory=dict)
    resources: Dict[str, Any] = field(default_factory=dict)
    seed: int = 0


class TrialRunner:
    """Builds one variant and steps it.

    Parameters
    ----------
    spec : TrialSpec
        The variant to run.
    overrides : Mapping, optional
        Values to put at given paths before building (a search algorithm's samples, a PBT mutation).
    echo : bool
        Also write the trial's logs to the original stderr (``-v``).
    debug : bool
        Stop in ``pdb`` before every ``run()`` call (``debug: true``, in the driver process only);
        output then stays on the terminal.
    """

    def __init__(self, spec: TrialSpec, overrides: Optional[Mapping[Tuple[Any, ...], Any]] = None,
                 echo: bool = False, debug: bool = False) -> None:
        self.spec = spec
        self.calls = 0
        self.finished = False  # run() already returned False (known from a checkpoint)
        self.last_metric: Optional[float] = None
        self.echo = echo
        self.debug = debug
        os.makedirs(os.path.join(spec.variant_dir, CHECKPOINT_DIR), exist_ok=True)
        if os.path.exists(os.path.join(spec.variant_dir, ERROR_FILE)):
            os.unlink(os.path.join(spec.variant_dir, ERROR_FILE))
        self._log = open(os.path.join(spec.variant_dir, LOG_FILE), "a", buffering=1, encoding="utf-8")
        # Log records (and flambe.log values, as TensorBoard events) go to the variant's directory.
        self._logging = TrialLogging(spec.variant_dir, verbose=echo)
        self._logging.__enter__()
        with self.captured():
            self.component = self._build(overrides or {})

    # ------------------------------------------------------------------ building
    def _build(self, overrides: Mapping[Tuple[Any, ...], Any]) -> Any:
        from flambe.compile.serialization import load
        from flambe.experiment.variants import set_path
        spec = self.spec
        schema = pickle.loads(pickle.dumps(spec.variant.schema))  # a fresh, unbuilt copy every time
        seed_everything(f"{spec.seed}:{spec.variant.id}")
        for path, value in overrides.items():
            schema = set_path(schema, path, value)
        root: Dict[str, Any] = dict(spec.resources)
        for stage, path in spec.upstream.items():
            root[stage] = load(path)
        root[spec.stage] = schema
        obj = Builder(root=root).build(schema, (spec.stage,)) if isinstance(schema, Schema) else schema
        saved = checkpoint_path(spec.variant_dir)
        if os.path.isdir(saved):  # continue (the driver removed the dirs of variants that start over)
            self.restore(saved, obj)
            logging.getLogger(__name__).info("Resumed from %s after %d run() call(s)", saved, self.calls)
        return obj

    def restore(self, path: str, obj: Any = None) -> None:
        """Load the checkpoint at ``path`` (state, and how far its run() calls got) into the component."""
        from flambe.compile.serialization import load_state_from_file, readable_path
        target = obj if obj is not None else self.component
        if hasattr(target, "load_state"):
            target.load_state(load_state_from_file(readable_path(path)))
        marker = _read_marker(os.path.dirname(path))
        self.calls = int(marker.get("calls", 0))
        self.finished = not marker.get("more", True)
        self.last_metric = marker.get("metric")

    # ------------------------------------------------------------------ stepping
    def step(self) -> Tuple[bool, Optional[float]]:
        """Call ``run()`` once, checkpoint, and return (more work to do, metric).

        A variant whose checkpoint says ``run()`` already returned False is not run again.
        """
        if self.finished:
            return False, self.last_metric
        with self.captured():
            run = getattr(self.component, "run", None)
            if self.debug:
                print(f"flambe debug: {self.spec.stage}/{os.path.basename(self.spec.variant_dir)} is about to "
                      f"call run() (call {self.calls + 1}); 's' steps into it, 'c' continues.")
                pdb.set_trace()
            more = bool(run()) if callable(run) else False
            metric_fn = getattr(self.component, "metric", None)
            metric = metric_fn() if callable(metric_fn) else None
            self.calls += 1
            metric = float(metric) if metric is not None else None
            self.finished, self.last_metric = not more, metric
            self.save(checkpoint_path(self.spec.variant_dir))
        return more, metric

    def save(self, path: str) -> None:
        """Write the component's checkpoint at ``path`` (atomically, replacing an older one), and beside it
        how many run() calls it holds and whether run() asked for more."""
        from flambe.compile.component import Component
        from flambe.compile.serialization import save
        save(self.component, path, overwrite=True, pickle_only=not isinstance(self.component, Component))
        _write_marker(os.path.dirname(path), {"calls": self.calls, "more": not self.finished,
                                              "metric": self.last_metric})

    @contextlib.contextmanager
    def captured(self) -> Iterator[None]:
        """Send prints to the variant's log; record an error's traceback in ``error.txt``."""
        out = _Tee(self._log, sys.__stderr__ if self.echo else None)
        try:
            if self.debug:
                yield
            else:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    yield
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                text = "".join(traceback.format_exception(exc))
                self._log.write(text)
                with open(os.path.join(self.spec.variant_dir, ERROR_FILE), "w", encoding="utf-8") as handle:
                    handle.write(text)
            raise

    def close(self) -> None:
        """Detach the log file and close the trial's TensorBoard writer."""
        self._logging.__exit__(None, None, None)
        self._log.close()


def seed_everything(key: str) -> int:
    """Seed ``random``, numpy (when imported) and torch (when imported) from a string; return the seed."""
    import hashlib
    import random
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    return seed


def _read_marker(folder: str) -> dict:
    try:
        with open(os.path.join(folder, MARKER_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _write_marker(folder: str, data: dict) -> None:
    path = os.path.join(folder, MARKER_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


class _Tee:
    """A text stream writing to the log file and, with ``-v``, to the console too."""

    def __init__(self, primary: Any, secondary: Optional[Any]) -> None:
        self.primary, self.secondary = primary, secondary

    def write(self, text: str) -> int:
        self.primary.write(text)
        if self.secondary is not None:
            self.secondary.write(text)
        return len(text)

    def flush(self) -> None:
        self.primary.flush()
        if self.secondary is not None:
            self.secondary.flush()
