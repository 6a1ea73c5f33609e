"""configs/sqlite_pipeline.yaml: training data streamed from SQLite through a caching, shuffling pipe."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def test_sqlite_pipeline_example_trains_from_the_table(tmp_path):
    made = subprocess.run([sys.executable, os.path.join(ROOT, "configs", "data", "make_sqlite_example.py")],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    result = subprocess.run([os.path.join(BIN, "flambe"), os.path.join(ROOT, "configs", "sqlite_pipeline.yaml"),
                             "--force"], capture_output=True, text=True, cwd=str(tmp_path), timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    output = tmp_path / "flambe-output" / "output__sqlite_pipeline"
    (evaluated,) = os.listdir(output / "evaluate")
    accuracy = json.loads((output / "evaluate" / evaluated / "variant.json").read_text())["metric"]
    assert accuracy > 0.9  # two well separated classes; a logistic regression learns them from the stream
