"""Unit tests for flambe.learn.Script: running an argparse training script as a stage."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import flambe
from flambe.learn import Script
from flambe.logging import TrialLogging

TRAIN_PY = textwrap.dedent("""
    import argparse
    import json
    import os

    import flambe

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for step in range(3):
        flambe.log("acc", args.lr * (step + 1), step)
    flambe.log("loss", 2.5, 2)
    with open(os.path.join(args.out, "args.json"), "w") as handle:
        json.dump(vars(args), handle)
    print("hello from mypkg, lr", args.lr, flush=True)
""")

FAIL_PY = textwrap.dedent("""
    print("loading the data", flush=True)
    raise ValueError("no such column: txet")
""")


@pytest.fixture
def package(tmp_path, monkeypatch):
    """``mypkg`` (with ``train`` and ``fail`` modules) importable by the script's subprocess."""
    pkg = tmp_path / "src" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(TRAIN_PY)
    (pkg / "fail.py").write_text(FAIL_PY)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "src"))
    return pkg


def test_script_runs_and_reports(tmp_path, package):
    trial = tmp_path / "trial"
    script = Script(script="mypkg.train", args={"lr": 0.1, "flag": True}, output_dir_arg="out", metric_name="acc")
    assert script.metric() is None
    with TrialLogging(str(trial)):
        assert script.run() is False
    # the last value of each tag the script logged
    assert script.report == {"acc": pytest.approx(0.3), "loss": pytest.approx(2.5)}
    assert script.metric() == pytest.approx(0.3)
    # the output-directory flag received the trial directory, and argparse got the other flags
    received = json.loads((trial / "args.json").read_text())
    assert received == {"lr": 0.1, "flag": True, "out": str(trial)}
    # what the script printed reached the trial log
    assert "hello from mypkg, lr 0.1" in (trial / "log.txt").read_text()

    flambe.save(script, str(tmp_path / "saved"))
    loaded = flambe.load(str(tmp_path / "saved"))
    assert loaded.report == script.report
    assert loaded.metric() == script.metric()
    # without metric_name, metric() is the last scalar logged
    loaded.metric_name = None
    assert loaded.metric() == pytest.approx(2.5)


def test_failing_script_raises_with_its_output(tmp_path, package):
    script = Script(script="mypkg.fail")
    with TrialLogging(str(tmp_path / "trial")):
        with pytest.raises(RuntimeError, match="mypkg.fail") as info:
            script.run()
    message = str(info.value)
    assert "loading the data" in message
    assert "ValueError: no such column: txet" in message
    assert script.report == {}


def test_command_flag_rendering():
    script = Script(script="pkg.mod", args={"lr": 0.1, "flag": True, "off": False, "none": None,
                                            "layers": [64, 32], "--raw": "x", "name": "a b"},
                    output_dir_arg="save-dir")
    assert script.command("/trial") == [sys.executable, "-m", "pkg.mod", "--lr", "0.1", "--flag", "--layers", "64",
                                        "32", "--raw", "x", "--name", "a b", "--save-dir", "/trial"]
    assert script.command() == script.command("/trial")[:-2]
    as_list = Script(script="pkg.mod", args=["--epochs", 3, "-v"])
    assert as_list.command("/trial") == [sys.executable, "-m", "pkg.mod", "--epochs", "3", "-v"]
    assert Script(script="pkg.mod").command() == [sys.executable, "-m", "pkg.mod"]
