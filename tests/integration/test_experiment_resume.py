"""Resume after SIGKILL: a killed ``flambe`` run, started again, re-runs nothing that finished.

The trainer stage sleeps in each of its ``run()`` calls; the test kills the flambe process (SIGKILL,
no clean-up) once some trainer variants are done and others are mid-way, then runs the same config
again. Every component appends one line per ``run()`` call to a shared file, so the test counts
exactly which calls happened across both runs.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
STEPS = 4


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _statuses(stage_dir: str) -> dict:
    out = {}
    for name in os.listdir(stage_dir) if os.path.isdir(stage_dir) else []:
        try:
            with open(os.path.join(stage_dir, name, "variant.json")) as handle:
                out[name] = json.load(handle)["status"]
        except (OSError, ValueError, KeyError):
            out[name] = "?"
    return out


def test_sigkill_mid_stage_then_resume_reruns_nothing_finished(tmp_path):
    counts = tmp_path / "calls.txt"
    config = tmp_path / "exp.yaml"
    config.write_text(textwrap.dedent(f"""\
        flambe_testkit: flambe_testkit
        ---
        !Experiment
        name: resume
        save_path: {tmp_path / 'out'}
        resume: true
        pipeline:
          model: !ToyModel
            width: !g [1, 2]
            counts: {counts}
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.2, 0.3]
            steps: {STEPS}
            sleep: 0.6
            counts: {counts}
          eval: !ToyEval
            trainer: !@ train
            counts: {counts}
        """))
    output = tmp_path / "out" / "output__resume"
    train_dir = output / "train"
    cmd = [sys.executable, "-m", "flambe.cli", str(config)]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        try:
            while time.monotonic() < deadline:
                statuses = _statuses(str(train_dir))
                done = [n for n, s in statuses.items() if s == "done"]
                running = [n for n, s in statuses.items() if s == "running"]
                if done and running:
                    break
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                time.sleep(0.1)
            else:
                pytest.fail("the trainer stage never had finished and running variants at once")
            time.sleep(0.7)  # let a running variant get part-way (a checkpoint after a run() call)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    before = _statuses(str(train_dir))
    finished_before = {n for n, s in before.items() if s == "done"}
    unfinished_before = {n for n, s in before.items() if s != "done"}
    assert finished_before and unfinished_before, before
    assert not (output / "eval").exists() or not os.listdir(output / "eval")
    calls_before = counts.read_text().splitlines()

    time.sleep(1.0)  # a killed run's trial processes stop when their raylet goes; make sure none still writes
    assert counts.read_text().splitlines() == calls_before

    second = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr

    lines = counts.read_text().splitlines()
    new_lines = lines[len(calls_before):]
    # Models finished in the first run: never run again.
    assert not [line for line in new_lines if line.startswith("model")], new_lines
    assert collections.Counter(line for line in lines if line.startswith("model")) == {
        "model width=1 depth=1": 1, "model width=2 depth=1": 1}
    # Finished trainers: not one more run() call. Every trainer step happened, and at most the one
    # step a kill interrupted before its checkpoint could be repeated.
    trainer_lines = collections.Counter(line for line in lines if line.startswith("trainer"))
    for lr in (0.1, 0.2, 0.3):
        for width in (1, 2):
            for step in range(1, STEPS + 1):
                key = f"trainer lr={lr} width={width} depth=1 step={step}"
                assert 1 <= trainer_lines[key] <= 2, (key, trainer_lines)
    assert sum(trainer_lines.values()) - 6 * STEPS <= len(unfinished_before)
    for name in finished_before:
        with open(train_dir / name / "variant.json") as handle:
            saved = json.load(handle)
        lr, width = saved["params"]["lr"], saved["inherited"]["model.width"]
        assert not [line for line in new_lines if line.startswith(f"trainer lr={lr} width={width} ")], name
    # Everything that had not finished did, and every variant ran to its last step.
    after = _statuses(str(train_dir))
    assert set(after.values()) == {"done"} and len(after) == 6
    for name in after:
        with open(train_dir / name / "variant.json") as handle:
            assert json.load(handle)["calls"] == STEPS
    assert set(_statuses(str(output / "eval")).values()) == {"done"}
    assert len([line for line in lines if line.startswith("eval")]) == 6
    with open(output / "progress.json") as handle:
        assert json.load(handle)["status"] == "done"


def test_max_failures_retries_a_trial_from_its_last_checkpoint(tmp_path):
    counts = tmp_path / "calls.txt"
    config = tmp_path / "retry.yaml"
    config.write_text(textwrap.dedent(f"""\
        flambe_testkit: flambe_testkit
        ---
        !Experiment
        name: retry
        save_path: {tmp_path / 'out'}
        max_failures: 1
        pipeline:
          model: !ToyModel
            width: 1
          train: !ToyTrainer
            model: !@ model
            steps: 4
            fail_at: 3
            fail_once: {tmp_path / 'failed-once'}
            counts: {counts}
        """))
    result = subprocess.run([sys.executable, "-m", "flambe.cli", str(config)], env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "failed-once").exists()
    # Steps 1 and 2 were checkpointed before the failure at step 3; the retry continues from there.
    assert counts.read_text().splitlines() == [f"trainer lr=0.1 width=1 depth=1 step={n}" for n in (1, 2, 3, 4)]
    train = tmp_path / "out" / "output__retry" / "train"
    (variant,) = os.listdir(train)
    with open(train / variant / "variant.json") as handle:
        saved = json.load(handle)
    assert saved["status"] == "done" and saved["calls"] == 4
    assert "toy failure once at step 3" in (train / variant / "log.txt").read_text()
    assert not (train / variant / "error.txt").exists()
