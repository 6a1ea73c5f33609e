"""A Script stage in an experiment: an argparse script searched with !g, its logged values as the metric."""

from __future__ import annotations

import json

import pytest
from test_experiment_run import console, output_dir, run_flambe, write_config

pytestmark = pytest.mark.integration


def test_script_stage_reports_what_the_script_logs_and_reduce_keeps_the_best(tmp_path):
    config = write_config(tmp_path, "script", """
        pipeline:
          fit: !Script
            script: flambe_testkit.script_train
            args:
              lr: !g [0.1, 0.5]
              steps: 3
            output_dir_arg: out
            metric_name: score
        reduce:
          fit: 1
    """)
    result = run_flambe(config)
    assert result.returncode == 0, console(result)
    fit = output_dir(tmp_path, "script") / "fit"
    variants = {}
    for folder in fit.iterdir():
        variants[folder.name] = json.loads((folder / "variant.json").read_text())
        # the script got the trial folder as --out, logged into it, and its output reached the trial log
        assert (folder / "script-output.txt").exists()
        assert list((folder / "tensorboard").iterdir())
        assert "step 3: score" in (folder / "log.txt").read_text()
    scores = sorted(v["metric"] for v in variants.values())
    assert scores == pytest.approx([0.1 * 6, 0.5 * 6])  # score after 3 steps: lr * (1 + 2 + 3)
    assert "2 (kept 1)" in result.stdout
