"""Experiments end to end: the `flambe` command on real configs, with a real local Ray and real files.

The test components (tests/fixtures/flambe_testkit) append one line to a ``counts:`` file per
``run()`` call, in whatever process runs them, so the tests can count run() calls exactly.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
TIMEOUT = 240
ASHA_MILESTONES = {1, 2, 4, 8, 16}  # grace_period 1, reduction_factor 2, max_t 20


# ---------------------------------------------------------------------- helpers
def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def run_flambe(config: Path, *args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run the real `flambe` command (a subprocess, its own local Ray)."""
    return subprocess.run([sys.executable, "-m", "flambe.cli", str(config), *args], capture_output=True, text=True,
                          env=_env(), cwd=str(config.parent), input=stdin, timeout=TIMEOUT)


def console(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def write_config(tmp_path: Path, name: str, body: str) -> Path:
    """An experiment config using the test components, writing under ``tmp_path/out``."""
    config = tmp_path / f"{name}.yaml"
    config.write_text("flambe_testkit: flambe_testkit\n---\n!Experiment\n"
                      f"name: {name}\nsave_path: {tmp_path / 'out'}\n" + textwrap.dedent(body).lstrip("\n"))
    return config


def output_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / "out" / f"output__{name}"


def read_variants(output: Path, stage: str) -> Dict[str, Dict[str, Any]]:
    """Directory name → variant.json of every variant directory of ``stage`` (every one must have it)."""
    folder = output / stage
    if not folder.is_dir():
        return {}
    return {d.name: json.loads((d / "variant.json").read_text()) for d in sorted(folder.iterdir()) if d.is_dir()}


def read_counts(path: Path) -> Counter:
    return Counter(path.read_text().splitlines()) if path.exists() else Counter()


def lines_of(counts: Counter, kind: str) -> Counter:
    return Counter({line: n for line, n in counts.items() if line.startswith(kind + " ")})


def progress_stages(output: Path) -> Dict[str, Dict[str, Any]]:
    progress = json.loads((output / "progress.json").read_text())
    return {stage["name"]: stage for stage in progress["stages"]}


@pytest.fixture
def testkit(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test components, importable here too (to load checkpoints)."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    import flambe_testkit
    return flambe_testkit


# ---------------------------------------------------------------------- 1. grid, inheritance, outputs
def test_grid_with_inheritance_runs_every_variant_once_and_records_everything(tmp_path: Path, testkit: Any) -> None:
    counts = tmp_path / "counts.txt"
    steps = 3
    config = write_config(tmp_path, "grid", f"""
        pipeline:
          model: !ToyModel
            width: !g [1, 2, 3]
            depth: !g [1, 2]
            counts: {counts}
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            steps: {steps}
            counts: {counts}
          eval: !ToyEval
            trainer: !@ train
            counts: {counts}
        """)
    result = run_flambe(config)
    assert result.returncode == 0, console(result)
    out = output_dir(tmp_path, "grid")
    models, trains, evals = (read_variants(out, stage) for stage in ("model", "train", "eval"))
    assert (len(models), len(trains), len(evals)) == (6, 12, 12)

    # run() calls, counted in the trials' own processes: upstream variants are never re-run.
    grid = [(w, d) for w in (1, 2, 3) for d in (1, 2)]
    calls = read_counts(counts)
    assert lines_of(calls, "model") == Counter(f"model width={w} depth={d}" for w, d in grid)
    assert lines_of(calls, "trainer") == Counter(f"trainer lr={lr} width={w} depth={d} step={s}"
                                                 for w, d in grid for lr in (0.1, 0.01) for s in range(1, steps + 1))
    assert sum(lines_of(calls, "eval").values()) == 12
    assert sum(calls.values()) == 6 + 12 * steps + 12

    # variant.json: status, own and inherited params, parents; the files of every variant.
    for stage, found in (("model", models), ("train", trains), ("eval", evals)):
        for name, v in found.items():
            folder = out / stage / name
            assert v["stage"] == stage and v["name"] == name and v["status"] == "done", v
            assert v["error"] is None
            assert (folder / "log.txt").is_file()
            assert (folder / "checkpoint" / "checkpoint.flambe").exists()
            assert Path(v["log"]) == folder / "log.txt"
            assert Path(v["checkpoint"]) == folder / "checkpoint" / "checkpoint.flambe"
    model_by_id = {v["id"]: v for v in models.values()}
    assert len(model_by_id) == 6
    for v in models.values():
        assert set(v["params"]) == {"width", "depth"}
        assert v["inherited"] == {} and v["parents"] == {} and v["calls"] == 1
        assert v["metric"] == pytest.approx(v["params"]["width"] * v["params"]["depth"])
    assert sorted((v["params"]["width"], v["params"]["depth"]) for v in models.values()) == grid

    train_by_id = {v["id"]: v for v in trains.values()}
    assert len(train_by_id) == 12
    for v in trains.values():
        parent = model_by_id[v["parents"]["model"]]
        assert v["parents"] == v["upstream"] == {"model": parent["id"]}
        assert v["params"] == {"lr": v["params"]["lr"]} and v["params"]["lr"] in (0.1, 0.01)
        assert v["inherited"] == {"model.width": parent["params"]["width"], "model.depth": parent["params"]["depth"]}
        assert v["calls"] == steps
        assert v["metric"] == pytest.approx(parent["metric"] * v["params"]["lr"] + 0.001 * steps)
        assert "trainer step 3" in (out / "train" / v["name"] / "log.txt").read_text()
    # Two trainers use each model variant, and the 12 trainers are the full product.
    assert Counter(v["parents"]["model"] for v in trains.values()) == Counter({mid: 2 for mid in model_by_id})
    assert sorted((v["inherited"]["model.width"], v["inherited"]["model.depth"], v["params"]["lr"])
                  for v in trains.values()) == sorted((w, d, lr) for w, d in grid for lr in (0.1, 0.01))

    for v in evals.values():
        trainer = train_by_id[v["parents"]["train"]]
        assert v["parents"] == {"model": trainer["parents"]["model"], "train": trainer["id"]}
        assert v["upstream"] == {"train": trainer["id"]}
        assert v["params"] == {}
        assert v["inherited"] == {**trainer["inherited"], "train.lr": trainer["params"]["lr"]}
        assert v["calls"] == 1
        assert v["metric"] == pytest.approx(trainer["metric"])
    assert Counter(v["parents"]["train"] for v in evals.values()) == Counter({tid: 1 for tid in train_by_id})

    # Checkpoints load back as the components, in the state of their last run().
    import flambe
    for v in models.values():
        model = flambe.load(v["checkpoint"])
        assert isinstance(model, testkit.ToyModel)
        assert (model.width, model.depth, model.calls) == (v["params"]["width"], v["params"]["depth"], 1)
    for v in trains.values():
        trainer = flambe.load(v["checkpoint"])
        assert isinstance(trainer, testkit.ToyTrainer) and isinstance(trainer.model, testkit.ToyModel)
        assert trainer.model.width == v["inherited"]["model.width"]
        assert trainer.model.depth == v["inherited"]["model.depth"]
        assert trainer.lr == v["params"]["lr"]
        assert trainer.step == steps
        assert trainer.metric() == pytest.approx(v["metric"])
    some_eval = next(iter(evals.values()))
    evaluator = flambe.load(some_eval["checkpoint"])
    assert isinstance(evaluator, testkit.ToyEval)
    assert evaluator.value == pytest.approx(some_eval["metric"])

    # experiment.yaml reloads to the same experiment.
    from flambe.compile.yaml import load
    from flambe.experiment import Experiment
    saved = load((out / "experiment.yaml").read_text())
    assert isinstance(saved, Experiment)
    assert saved.name == "grid"
    assert list(saved.pipeline) == ["model", "train", "eval"]
    assert [schema.tag for schema in saved.pipeline.values()] == ["ToyModel", "ToyTrainer", "ToyEval"]
    assert saved.variant_counts() == {"model": 6, "train": 12, "eval": 12}

    # progress.json
    progress = json.loads((out / "progress.json").read_text())
    assert progress["status"] == "done"
    stages = progress_stages(out)
    assert list(stages) == ["model", "train", "eval"]
    for stage, n in (("model", 6), ("train", 12), ("eval", 12)):
        assert stages[stage]["status"] == "done"
        assert stages[stage]["variants"] == {"pending": 0, "running": 0, "done": n, "failed": 0}
    best_train = max(trains.values(), key=lambda v: v["metric"])
    assert stages["train"]["best"]["variant"] == best_train["id"]

    # results.sqlite: every variant, every reported metric.
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT id, stage, status, params, calls FROM variants").fetchall()
        assert len(rows) == 30
        assert Counter(stage for _, stage, _, _, _ in rows) == Counter(model=6, train=12, eval=12)
        assert {status for _, _, status, _, _ in rows} == {"done"}
        by_id = {**model_by_id, **train_by_id, **{v["id"]: v for v in evals.values()}}
        for vid, _, _, params, n in rows:
            assert json.loads(params) == by_id[vid]["params"] and n == by_id[vid]["calls"]
        assert db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 6 + 12 * steps + 12
        for v in trains.values():
            history = db.execute("SELECT step, value FROM metrics WHERE variant_id = ? ORDER BY id",
                                 (v["id"],)).fetchall()
            assert [step for step, _ in history] == list(range(1, steps + 1))
            assert history[-1][1] == pytest.approx(v["metric"])
        for v in list(models.values()) + list(evals.values()):
            assert db.execute("SELECT COUNT(*) FROM metrics WHERE variant_id = ?", (v["id"],)).fetchone()[0] == 1
        stage_rows = dict(db.execute("SELECT name, position FROM stages").fetchall())
        assert stage_rows == {"model": 0, "train": 1, "eval": 2}


# ---------------------------------------------------------------------- 2. reduce, both directions
def test_reduce_keeps_the_best_variants_in_each_direction(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "reduce", f"""
        pipeline:
          model: !ToyModel
            width: !g [1, 2, 3]
          low: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            lower_is_better: true
          high: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            lower_is_better: false
          eval_low: !ToyEval
            trainer: !@ low
            counts: {counts}
          eval_high: !ToyEval
            trainer: !@ high
            counts: {counts}
        reduce:
          low: 2
          high: 2
        """)
    dry = run_flambe(config, "--dry-run")
    assert dry.returncode == 0, console(dry)
    assert re.search(r"\blow !ToyTrainer: 6 variant\(s\)", dry.stdout), dry.stdout
    assert re.search(r"\beval_low !ToyEval: 2 variant\(s\)", dry.stdout), dry.stdout
    assert re.search(r"\beval_high !ToyEval: 2 variant\(s\)", dry.stdout), dry.stdout
    assert not output_dir(tmp_path, "reduce").exists()

    result = run_flambe(config)
    assert result.returncode == 0, console(result)
    out = output_dir(tmp_path, "reduce")
    stages = progress_stages(out)
    for stage, lower, pick in (("low", True, min), ("high", False, max)):
        trainers = read_variants(out, stage)
        assert len(trainers) == 6 and {v["status"] for v in trainers.values()} == {"done"}
        ranked = sorted(trainers.values(), key=lambda v: v["metric"], reverse=not lower)
        assert len({v["metric"] for v in ranked}) == 6  # no ties: the expected pair is unambiguous
        expected = {v["id"] for v in ranked[:2]}
        assert pick(v["metric"] for v in ranked[:2]) == pick(v["metric"] for v in trainers.values())
        evals = read_variants(out, f"eval_{stage}")
        assert len(evals) == 2, sorted(evals)
        assert {v["parents"][stage] for v in evals.values()} == expected
        by_id = {v["id"]: v for v in trainers.values()}
        for v in evals.values():
            assert v["status"] == "done"
            assert v["metric"] == pytest.approx(by_id[v["parents"][stage]]["metric"])
        assert stages[stage]["lower_is_better"] is lower
        assert set(stages[stage]["kept"]) == expected
        assert stages[f"eval_{stage}"]["variants"]["done"] == 2
    assert sum(lines_of(read_counts(counts), "eval").values()) == 4


# ---------------------------------------------------------------------- 3 + 8. output guard, --force, -v
def test_output_guard_force_and_verbose_trial_output(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "guard", f"""
        pipeline:
          model: !ToyModel
            width: 2
            counts: {counts}
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            steps: 2
            counts: {counts}
        """)
    out = output_dir(tmp_path, "guard")

    first = run_flambe(config)
    assert first.returncode == 0, console(first)
    assert sum(read_counts(counts).values()) == 1 + 2 * 2
    # Without -v, trial output goes to the variant's log, not to the console.
    assert "trainer step" not in console(first)
    trains = read_variants(out, "train")
    assert len(trains) == 2
    for name in trains:
        log = (out / "train" / name / "log.txt").read_text()
        assert "trainer step 1" in log and "trainer step 2" in log

    again = run_flambe(config)
    assert again.returncode == 2, console(again)
    assert "--force" in again.stderr and "resume" in again.stderr, again.stderr
    assert "Traceback" not in console(again)
    assert sum(read_counts(counts).values()) == 5  # nothing ran
    assert json.loads((out / "progress.json").read_text())["status"] == "done"

    (out / "marker.txt").write_text("from the first run")
    forced = run_flambe(config, "--force", "-v")
    assert forced.returncode == 0, console(forced)
    assert sum(read_counts(counts).values()) == 10  # everything ran again
    assert not (out / "marker.txt").exists()  # the old output was replaced
    assert json.loads((out / "progress.json").read_text())["status"] == "done"
    # With -v, trial output reaches the console.
    assert "trainer step 1" in console(forced) and "trainer step 2" in console(forced)


# ---------------------------------------------------------------------- 4. failure policies
def test_failure_stops_the_experiment_by_default(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "stop", f"""
        max_failures: 0
        pipeline:
          model: !ToyModel
            width: 2
          train: !ToyTrainer
            model: !@ model
            fail: !g [false, true]
            fail_at: 2
            steps: 4
            sleep: 1.0
            counts: {counts}
          eval: !ToyEval
            trainer: !@ train
            counts: {counts}
        """)
    result = run_flambe(config)
    text = console(result)
    assert result.returncode == 1, text
    assert "Traceback" not in text  # flambe reports the failure, it does not crash
    out = output_dir(tmp_path, "stop")
    # The sibling may not have been registered when the stage stopped: read the variant.json files there are.
    trains = {p.parent.name: json.loads(p.read_text()) for p in (out / "train").glob("*/variant.json")}
    failed = [v for v in trains.values() if v["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["params"] == {"fail": True}, trains
    bad = failed[0]
    assert bad["calls"] == 1  # step 1 succeeded, step 2 raised; max_failures 0: no retry
    assert bad["log"] in text
    log = Path(bad["log"]).read_text()
    assert "Traceback" in log and "ValueError: toy failure at step 2" in log
    assert "ValueError: toy failure at step 2" in (out / "train" / bad["name"] / "error.txt").read_text()
    assert "ValueError: toy failure at step 2" in (bad["error"] or "")
    # The downstream stage never ran.
    assert {v["status"] for v in read_variants(out, "eval").values()} <= {"pending"}
    assert not lines_of(read_counts(counts), "eval")
    assert json.loads((out / "progress.json").read_text())["status"] == "failed"
    stages = progress_stages(out)
    assert stages["train"]["status"] == "failed"
    assert stages["eval"]["variants"]["done"] == 0
    # The run is over: nothing is left 'running', and an interrupted variant is not recorded as complete
    # (it sleeps 1 s per run() call, so the failure at the other's 2nd call interrupts it).
    for v in trains.values():
        assert v["status"] != "running", v
        if v["status"] in ("done", "stopped"):
            assert v["calls"] == 4, v
    assert all(stage["variants"]["running"] == 0 for stage in stages.values()), stages


def test_failures_without_stop_on_failure_run_everything_else(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "keepgoing", f"""
        max_failures: 0
        stop_on_failure: false
        pipeline:
          model: !ToyModel
            width: !g [1, 2]
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            fail: !g [false, true]
            fail_at: 2
            steps: 3
            counts: {counts}
          eval: !ToyEval
            trainer: !@ train
            counts: {counts}
        """)
    result = run_flambe(config)
    text = console(result)
    assert result.returncode == 1, text
    assert "Traceback" not in text
    out = output_dir(tmp_path, "keepgoing")
    trains = read_variants(out, "train")
    assert len(trains) == 8
    done = {v["id"] for v in trains.values() if v["status"] == "done"}
    failed = [v for v in trains.values() if v["status"] == "failed"]
    assert len(done) == 4 and len(failed) == 4
    assert all(v["params"]["fail"] is True and v["calls"] == 1 for v in failed)
    assert all(v["params"]["fail"] is False and v["calls"] == 3 for v in trains.values() if v["id"] in done)
    # Failed variants never flow downstream: one eval per successful trainer.
    evals = read_variants(out, "eval")
    assert len(evals) == 4
    assert {v["parents"]["train"] for v in evals.values()} == done
    assert {v["status"] for v in evals.values()} == {"done"}
    calls = read_counts(counts)
    assert sum(lines_of(calls, "trainer").values()) == 4 * 3 + 4 * 1
    assert sum(lines_of(calls, "eval").values()) == 4
    # The summary lists every failure with its log.
    assert "4 variant(s) failed" in text
    for v in failed:
        assert f"train/{v['name']}" in text
        assert v["log"] in text
        assert "ValueError: toy failure at step 2" in Path(v["log"]).read_text()
    stages = progress_stages(out)
    assert stages["train"]["variants"] == {"pending": 0, "running": 0, "done": 4, "failed": 4}
    assert stages["eval"]["variants"] == {"pending": 0, "running": 0, "done": 4, "failed": 0}
    assert json.loads((out / "progress.json").read_text())["status"] == "failed"


# ---------------------------------------------------------------------- 5. scheduler
def test_asha_scheduler_stops_bad_variants_early(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "asha", f"""
        pipeline:
          model: !ToyModel
            width: 2
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.05, 0.02]
            bad: !g [false, true]
            steps: 20
            counts: {counts}
        schedulers:
          train: !ray.ASHAScheduler {{max_t: 20, grace_period: 1, reduction_factor: 2}}
        """)
    result = run_flambe(config)
    assert result.returncode == 0, console(result)
    out = output_dir(tmp_path, "asha")
    trains = read_variants(out, "train")
    assert len(trains) == 6
    for v in trains.values():
        if v["calls"] == 20:
            assert v["status"] == "done", v
        else:  # stopped by ASHA at one of its rungs
            assert v["status"] == "stopped" and v["calls"] in ASHA_MILESTONES, v
    # The best variant is never below a cutoff; at least one bad variant is cut early.
    best = max(trains.values(), key=lambda v: v["metric"])
    assert best["params"] == {"lr": 0.1, "bad": False}
    assert best["status"] == "done" and best["calls"] == 20
    assert any(v["params"]["bad"] and v["status"] == "stopped" and v["calls"] < 20 for v in trains.values())
    # run() was called exactly as often as the variants report (a stopped trial does not go on).
    assert sum(lines_of(read_counts(counts), "trainer").values()) == sum(v["calls"] for v in trains.values())
    progress = progress_stages(out)["train"]
    assert progress["variants"] == {"pending": 0, "running": 0, "done": 6, "failed": 0}


# ---------------------------------------------------------------------- 6. search algorithm
def test_optuna_search_samples_num_samples_variants(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "search", f"""
        pipeline:
          model: !ToyModel
            width: 2
          train: !ToyTrainer
            model: !@ model
            lr: !loguniform [0.001, 0.1]
            sleep: !uniform [0.0, 0.001]
            steps: 2
            counts: {counts}
          eval: !ToyEval
            trainer: !@ train
            counts: {counts}
        search:
          train: !ray.OptunaSearch {{}}
        num_samples:
          train: 4
        """)
    dry = run_flambe(config, "--dry-run")
    assert dry.returncode == 0, console(dry)
    assert re.search(r"\btrain !ToyTrainer: 4 variant\(s\)", dry.stdout), dry.stdout
    assert re.search(r"\beval !ToyEval: 4 variant\(s\)", dry.stdout), dry.stdout

    result = run_flambe(config)
    assert result.returncode == 0, console(result)
    out = output_dir(tmp_path, "search")
    trains = read_variants(out, "train")
    assert len(trains) == 4, sorted(trains)
    lrs = [v["params"]["lr"] for v in trains.values()]
    assert len(set(lrs)) == 4
    for v in trains.values():
        assert v["status"] == "done" and v["calls"] == 2
        assert set(v["params"]) == {"lr", "sleep"}
        assert 0.001 <= v["params"]["lr"] <= 0.1
        assert 0.0 <= v["params"]["sleep"] <= 0.001
    # The sampled values are the ones the trials were built with.
    trainer_lines = lines_of(read_counts(counts), "trainer")
    assert sum(trainer_lines.values()) == 4 * 2
    used = {float(re.search(r"lr=(\S+)", line).group(1)) for line in trainer_lines}
    assert used == set(lrs)
    evals = read_variants(out, "eval")
    assert len(evals) == 4
    assert {v["parents"]["train"] for v in evals.values()} == {v["id"] for v in trains.values()}
    assert {v["status"] for v in evals.values()} == {"done"}


# ---------------------------------------------------------------------- 7. debug
def test_debug_runs_trials_here_one_at_a_time_under_pdb(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    config = write_config(tmp_path, "debugging", f"""
        debug: true
        pipeline:
          model: !ToyModel
            width: 2
            counts: {counts}
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.01]
            steps: 2
            counts: {counts}
        """)
    n_calls = 1 + 2 * 2
    result = run_flambe(config, stdin="c\n" * n_calls)
    text = result.stdout
    assert result.returncode == 0, console(result)
    assert text.count("(Pdb)") == n_calls, text
    notices = re.findall(r"flambe debug: (\w+)/(\S+) is about to call run\(\) \(call (\d+)\)", text)
    assert len(notices) == n_calls, text
    out = output_dir(tmp_path, "debugging")
    trains = read_variants(out, "train")
    models = read_variants(out, "model")
    # One variant at a time: each variant's calls are consecutive, 1..n, in pipeline order.
    blocks = [(key, [int(call) for _, _, call in group])
              for key, group in itertools.groupby(notices, key=lambda n: (n[0], n[1]))]
    keys = [key for key, _ in blocks]
    assert len(keys) == len(set(keys)) == 3
    assert keys[0] == ("model", next(iter(models))) and len(models) == 1
    assert sorted(keys[1:]) == sorted(("train", name) for name in trains)
    assert [calls for _, calls in blocks] == [[1], [1, 2], [1, 2]]
    # The prompt comes before each run() call: the trainer prints after its notice and prompt.
    chunks = text.split("flambe debug: ")[1:]
    for (stage, _, call), chunk in zip(notices, chunks):
        assert "(Pdb)" in chunk
        if stage == "train":
            assert chunk.index("(Pdb)") < chunk.index(f"trainer step {call}")
    # The experiment completed.
    assert json.loads((out / "progress.json").read_text())["status"] == "done"
    assert {v["status"] for v in trains.values()} == {"done"} and len(trains) == 2
    assert all(v["calls"] == 2 for v in trains.values())
    assert sum(read_counts(counts).values()) == n_calls
