"""Progress of a running experiment, kept by the driver as data: ``progress.json``, ``variant.json``
files and the results store.

``progress.json`` (rewritten atomically as the experiment runs)::

    {"name": ..., "status": "running" | "done" | "failed", "started": t, "updated": t,
     "stages": [{"name", "status", "lower_is_better", "variants": {"pending": n, "running": n, "done": n,
                 "failed": n}, "best": {"variant", "name", "metric"} | null, "kept": [ids] | null}, ...]}

Each variant directory holds ``variant.json``: its id, name, own and inherited parameters, upstream
variants, status, last and best metric, number of ``run()`` calls and, when it failed, the error. A
variant whose ``variant.json`` says ``done`` is complete: resume reuses it as is.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from flambe.experiment.store import RESULTS_FILE, ResultsStore
from flambe.experiment.variants import Variant

PROGRESS_FILE = "progress.json"
VARIANT_FILE = "variant.json"
FINISHED = ("done", "stopped")  # stopped: ended early by a scheduler; both are complete


def write_text(path: str, text: str) -> None:
    """Write a file atomically (a reader sees the old file or the new one, never half of one)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str, data: Any) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str))


def last_line(error: str) -> str:
    """The line of a traceback (or of any error text) that says what went wrong."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def read_json(path: str) -> Optional[Dict[str, Any]]:
    """A JSON file's content, or None if it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


@dataclass
class VariantRecord:
    """The driver's record of one variant."""

    variant: Variant
    directory: str
    status: str = "pending"
    metric: Optional[float] = None
    best_metric: Optional[float] = None
    calls: int = 0
    error: Optional[str] = None
    started: Optional[float] = None
    finished: Optional[float] = None
    resumed: bool = False
    params: Dict[str, Any] = field(default_factory=dict)
    _digest: Optional[str] = None

    @property
    def log(self) -> str:
        from flambe.experiment.trial import LOG_FILE
        return os.path.join(self.directory, LOG_FILE)

    @property
    def checkpoint(self) -> str:
        from flambe.experiment.trial import checkpoint_path
        return checkpoint_path(self.directory)

    @property
    def digest(self) -> str:
        """Hash of the variant's whole config: resume reuses the variant only while it is unchanged."""
        if self._digest is None:
            from flambe.experiment.variants import config_digest
            self._digest = config_digest(self.variant)
        return self._digest

    def to_json(self) -> Dict[str, Any]:
        data = self.variant.describe()
        data["config_digest"] = self.digest
        data["params"] = {**data["params"], **self.params}
        data.update(status=self.status, metric=self.metric, best_metric=self.best_metric, calls=self.calls,
                    error=self.error, started=self.started, finished=self.finished, log=self.log,
                    checkpoint=self.checkpoint)
        return data


@dataclass
class StageRecord:
    """The driver's record of one stage."""

    name: str
    position: int
    lower_is_better: bool = False
    status: str = "pending"
    variants: Dict[str, VariantRecord] = field(default_factory=dict)
    kept: Optional[List[str]] = None
    started: Optional[float] = None

    def counts(self) -> Dict[str, int]:
        out = {"pending": 0, "running": 0, "done": 0, "failed": 0}
        for record in self.variants.values():
            status = "done" if record.status in FINISHED else record.status
            out["pending" if status == "interrupted" else status] += 1
        return out

    def best(self) -> Optional[VariantRecord]:
        """The finished variant with the best final metric (in the stage's direction)."""
        scored = [r for r in self.variants.values() if r.status in FINISHED and r.metric is not None]
        if not scored:
            return None
        return (min if self.lower_is_better else max)(scored, key=lambda r: r.metric)

    def to_json(self) -> Dict[str, Any]:
        best = self.best()
        return {"name": self.name, "status": self.status, "lower_is_better": self.lower_is_better,
                "variants": self.counts(), "kept": self.kept,
                "best": {"variant": best.variant.id, "name": best.variant.name, "metric": best.metric}
                if best else None}


class ProgressState:
    """Everything the driver knows about the run, mirrored to disk as it changes.

    Parameters
    ----------
    name : str
        The experiment's name.
    output : str
        The experiment's output directory.
    stages : list of str
        Stage names in pipeline order.
    """

    def __init__(self, name: str, output: str, stages: List[str]) -> None:
        self.name = name
        self.output = output
        self.status = "running"
        self.started = time.time()
        self.stages: Dict[str, StageRecord] = {s: StageRecord(s, i) for i, s in enumerate(stages)}
        self.store = ResultsStore(os.path.join(output, RESULTS_FILE))
        self._last_write = 0.0
        self.listeners: List[Any] = []

    # ------------------------------------------------------------------ records
    def variant_dir(self, variant: Variant) -> str:
        return os.path.join(self.output, variant.stage, variant.name)

    def add_variant(self, variant: Variant) -> VariantRecord:
        """Register a variant (pending), or return its record if it is known already."""
        stage = self.stages[variant.stage]
        if variant.id not in stage.variants:
            stage.variants[variant.id] = VariantRecord(variant, self.variant_dir(variant))
        return stage.variants[variant.id]

    def failures(self) -> List[VariantRecord]:
        """Every failed variant, stage by stage."""
        return [r for s in self.stages.values() for r in s.variants.values() if r.status == "failed"]

    def previous(self, variant: Variant) -> Optional[Dict[str, Any]]:
        """What an earlier run wrote in this variant's ``variant.json``."""
        return read_json(os.path.join(self.variant_dir(variant), VARIANT_FILE))

    # ------------------------------------------------------------------ events
    def stage_started(self, stage: str, lower_is_better: bool) -> None:
        record = self.stages[stage]
        record.status, record.lower_is_better, record.started = "running", lower_is_better, time.time()
        self._stage_row(record)
        self.flush(force=True)

    def stage_finished(self, stage: str, kept: Optional[List[str]] = None) -> None:
        record = self.stages[stage]
        record.kept = kept
        failed = any(r.status == "failed" for r in record.variants.values())
        record.status = "failed" if failed else "done"
        self._stage_row(record)
        self.flush(force=True)

    def variant_started(self, record: VariantRecord) -> None:
        if record.status == "running":
            return
        record.status, record.started, record.error = "running", record.started or time.time(), None
        self.variant_changed(record)
        self._notify("started", record)

    def variant_reset(self, record: VariantRecord) -> None:
        """The variant starts over: forget what an earlier run recorded."""
        record.calls, record.metric, record.best_metric, record.started = 0, None, None, None
        self.store.clear_metrics(record.variant.id)

    def variant_result(self, record: VariantRecord, calls: int, metric: Optional[float]) -> None:
        record.calls = calls
        if metric is not None:
            record.metric = metric
            better = min if self.stages[record.variant.stage].lower_is_better else max
            record.best_metric = metric if record.best_metric is None else better(record.best_metric, metric)
        self.store.add_metric(record.variant.id, record.variant.stage, calls, metric)
        self._notify("result", record)
        self.flush()

    def variant_finished(self, record: VariantRecord, status: str, error: Optional[str] = None) -> None:
        record.status, record.error, record.finished = status, error, time.time()
        self.variant_changed(record)
        self._notify(status, record)

    def variant_reused(self, record: VariantRecord, saved: Dict[str, Any]) -> None:
        """A variant completed by an earlier run: take its recorded results."""
        self.variant_continued(record, saved)
        record.status, record.finished = saved.get("status", "done"), saved.get("finished")
        record.params = {k: v for k, v in saved.get("params", {}).items() if k not in record.variant.params}
        record.resumed = True
        self.variant_changed(record)
        self._notify("reused", record)

    def variant_continued(self, record: VariantRecord, saved: Dict[str, Any]) -> None:
        """A variant an earlier run started: keep its metrics, it continues from its checkpoint."""
        record.metric, record.best_metric = saved.get("metric"), saved.get("best_metric")
        record.calls, record.started = saved.get("calls", 0), saved.get("started")

    def finish(self, status: str) -> None:
        self.status = status
        self.flush(force=True)
        self.store.close()

    # ------------------------------------------------------------------ output
    def _notify(self, event: str, record: VariantRecord) -> None:
        for listener in self.listeners:
            listener(event, record)

    def variant_changed(self, record: VariantRecord) -> None:
        data = record.to_json()
        write_json(os.path.join(record.directory, VARIANT_FILE), data)
        self.store.upsert_variant(data)
        self.flush()

    def _stage_row(self, record: StageRecord) -> None:
        best = record.best()
        self.store.upsert_stage({"name": record.name, "position": record.position, "status": record.status,
                                 "lower_is_better": int(record.lower_is_better),
                                 "best_variant": best.variant.id if best else None,
                                 "best_metric": best.metric if best else None, "kept": record.kept})

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "status": self.status, "started": self.started, "updated": time.time(),
                "output": self.output, "stages": [s.to_json() for s in self.stages.values()]}

    def flush(self, force: bool = False) -> None:
        """Rewrite ``progress.json`` and commit the results store (at most once a second unless ``force``)."""
        now = time.monotonic()
        if force or now - self._last_write > 1.0:
            self._last_write = now
            self.store.flush()
            write_json(os.path.join(self.output, PROGRESS_FILE), self.to_json())
