"""The driver's records: progress.json, variant.json and the SQLite results store (no Ray)."""

from __future__ import annotations

import json
import os

from flambe.compile.schema import Schema
from flambe.experiment.progress import ProgressState, read_json, write_json
from flambe.experiment.store import ResultsStore
from flambe.experiment.variants import Variant


def _variant(stage: str, vid: str) -> Variant:
    return Variant(stage=stage, id=vid, name=f"v-{vid}", schema=Schema(dict))


def test_store_queues_writes_and_reads_them_back(tmp_path):
    store = ResultsStore(str(tmp_path / "results.sqlite"))
    row = {"id": "a1", "stage": "train", "name": "lr=0.1-a1", "status": "running", "params": {"lr": 0.1},
           "inherited": {}, "parents": {"model": "m1"}}
    store.upsert_variant(row)
    for step, value in enumerate([0.5, 0.25, 0.125], start=1):
        store.add_metric("a1", "train", step, value)
    store.upsert_variant({**row, "status": "done", "metric": 0.125, "calls": 3})
    rows = store.variant_rows("train")  # reading commits what is queued
    assert len(rows) == 1 and rows[0]["status"] == "done" and rows[0]["metric"] == 0.125
    assert rows[0]["params"] == {"lr": 0.1} and rows[0]["parents"] == {"model": "m1"}
    assert [m["value"] for m in store.metric_history("a1")] == [0.5, 0.25, 0.125]
    assert [m["step"] for m in store.metric_history("a1")] == [1, 2, 3]
    store.clear_metrics("a1")
    assert store.metric_history("a1") == []
    store.add_metric("a1", "train", 1, 0.5)
    store.upsert_variant({**row, "id": "m1", "stage": "model", "name": "m1"})
    store.clear_stage("train")
    assert store.metric_history("a1") == [] and [r["id"] for r in store.variant_rows()] == ["m1"]
    store.upsert_variant(row)
    assert store.variant_rows("other") == []
    store.close()
    reopened = ResultsStore(str(tmp_path / "results.sqlite"))
    assert sorted(r["id"] for r in reopened.variant_rows()) == ["a1", "m1"]
    reopened.close()


def test_progress_tracks_status_best_metric_and_writes_files(tmp_path):
    progress = ProgressState("demo", str(tmp_path), ["model", "train"])
    progress.stage_started("train", lower_is_better=True)
    records = [progress.add_variant(_variant("train", vid)) for vid in ("a", "b", "c")]
    assert progress.add_variant(_variant("train", "a")) is records[0]
    for record, metrics in zip(records, ([0.9, 0.4], [0.8, 0.3], [0.7])):
        progress.variant_started(record)
        for calls, metric in enumerate(metrics, start=1):
            progress.variant_result(record, calls, metric)
    progress.variant_finished(records[0], "done")
    progress.variant_finished(records[1], "stopped")
    progress.variant_finished(records[2], "failed", "Traceback...\nValueError: boom")
    stage = progress.stages["train"]
    assert stage.counts() == {"pending": 0, "running": 0, "done": 2, "failed": 1}
    assert stage.best() is records[1]  # lower is better; failed variants never count
    assert records[0].best_metric == 0.4
    progress.stage_finished("train", kept=["b"])
    progress.finish("failed")

    saved = read_json(os.path.join(records[1].directory, "variant.json"))
    assert saved["status"] == "stopped" and saved["metric"] == 0.3 and saved["calls"] == 2
    assert saved["config_digest"] == records[1].digest
    failed = read_json(os.path.join(records[2].directory, "variant.json"))
    assert failed["status"] == "failed" and failed["error"].endswith("ValueError: boom")
    data = read_json(str(tmp_path / "progress.json"))
    assert data["status"] == "failed"
    train = next(s for s in data["stages"] if s["name"] == "train")
    assert train["best"]["variant"] == "b" and train["kept"] == ["b"] and train["status"] == "failed"
    store = ResultsStore(str(tmp_path / "results.sqlite"))
    assert {r["id"]: r["status"] for r in store.variant_rows()} == {"a": "done", "b": "stopped", "c": "failed"}
    assert len(store.metric_history("a")) == 2
    store.close()


def test_write_json_is_atomic_and_read_json_tolerates_missing(tmp_path):
    path = tmp_path / "x" / "data.json"
    write_json(str(path), {"a": 1})
    write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["data.json"]  # no temporary files left
    assert read_json(str(tmp_path / "missing.json")) is None


def test_metrics_have_names_and_an_older_results_file_gains_the_column(tmp_path):
    import sqlite3
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:  # the layout before metrics had names
        conn.execute("CREATE TABLE metrics (id INTEGER PRIMARY KEY, variant_id VARCHAR(32) NOT NULL, "
                     "stage VARCHAR(200) NOT NULL, step INTEGER NOT NULL, value FLOAT, time FLOAT NOT NULL)")
        conn.execute("INSERT INTO metrics (variant_id, stage, step, value, time) VALUES ('v0', 's', 1, 0.5, 0)")
    store = ResultsStore(str(old))
    store.add_metric("v1", "s", 1, 0.7)
    store.add_metric("v1", "s", 1, 0.9, name="auc")
    store.flush()
    rows = [(r["variant_id"], r["name"], r["value"]) for r in store.metric_history("v0") + store.metric_history("v1")]
    store.close()
    assert rows == [("v0", "metric", 0.5), ("v1", "metric", 0.7), ("v1", "auc", 0.9)]
