"""Experiment.parse() errors, ``flambe CONFIG --dry-run`` and the output-directory guard.

Malformed configs must stop both a dry run and a normal run with exit code 2 and one clear message
(no traceback) before anything runs; nothing here starts Ray.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from click.testing import CliRunner

from flambe.cli import main
from flambe.compile import ConfigError, FlambeError, yaml
from flambe.experiment import Experiment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

HEADER = "flambe_testkit: flambe_testkit\n---\n"
VALID = """\
!Experiment
name: demo
save_path: {save}
pipeline:
  model: !ToyModel
    width: !g [1, 2, 3]
    depth: !g [4, 5]
  train: !ToyTrainer
    model: !@ model
    lr: !g [0.1, 0.01]
  eval: !ToyEval
    model: !@ train.model
"""


def _config(tmp_path: Path, body: str, name: str = "exp.yaml") -> str:
    path = tmp_path / name
    path.write_text(HEADER + body.replace("{save}", str(tmp_path / "runs")))
    return str(path)


def _line_of(path: str, needle: str) -> int:
    """1-based line of the first line of ``path`` containing ``needle``."""
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _assert_clean_failure(result, path: str, *needles: str, where: Optional[str] = None) -> None:
    output = result.output
    assert result.exit_code == 2, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    assert output.count("Error:") == 1, output
    assert output.startswith("Error: "), output
    assert f"{path}:" in output, output
    for needle in needles:
        assert needle in output, (needle, output)
    if where is not None:
        assert f"{path}:{where}:" in output, (where, output)


# Each case: (config body, text the message must contain, "line:column" or a line marker, or None).
CASES = {
    "reduce_unknown_stage": (
        VALID + "reduce:\n  trian: 2\n",
        ["'reduce'", "'trian'", "not in the pipeline", "did you mean 'train'?"], None),
    "link_to_later_stage": (
        VALID.replace("model: !@ model", "model: !@ eval"),
        ["!@ eval", "'train'", "comes later in the pipeline"], ("model: !@ eval", 12)),
    "bad_name": (
        VALID.replace("name: demo", "name: 'bad name/x'"),
        ["Experiment name 'bad name/x' is not valid", "output__"], None),
    "misspelled_reduce": (
        VALID + "redcue:\n  train: 2\n",
        ["'redcue'", "did you mean 'reduce'?"], ("redcue:", 1)),
    "search_missing_stage": (
        VALID + "search:\n  trainer: !ray.BasicVariantGenerator {}\n",
        ["'search'", "'trainer'", "not in the pipeline"], None),
    "schedulers_missing_stage": (
        VALID + "schedulers:\n  evaluate: !ray.ASHAScheduler {}\n",
        ["'schedulers'", "'evaluate'", "not in the pipeline"], None),
    "missing_local_resource": (
        VALID + "resources:\n  local:\n    data: does/not/exist.txt\n",
        ["Local resource 'data' does not exist", "exist.txt"], None),
    "cluster_resource_locally": (
        VALID + "resources:\n  local:\n    data: !cluster /data/x\n",
        ["'data'", "!cluster /data/x", "only on a cluster", "--cluster"], ("!cluster", 11)),
    "num_samples_without_distributions": (
        VALID + "num_samples:\n  train: 3\n",
        ["'num_samples'", "'train'", "no distributions"], None),
    "resume_missing_stage": (
        VALID + "resume: trian\n",
        ["'resume: trian' is not a stage", "did you mean 'train'?"], None),
    "resume_list_missing_stage": (
        VALID + "resume: [model, evl]\n",
        ["'evl'", "not a stage", "did you mean 'eval'?"], None),
    "lower_is_better_option": (
        VALID.replace("lr: !g [0.1, 0.01]", "lr: !g [0.1, 0.01]\n    lower_is_better: !g [true, false]"),
        ["'lower_is_better' cannot be a search option"], ("lower_is_better: !g", 22)),
}


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_config_fails_cleanly(tmp_path, monkeypatch, case, dry_run):
    monkeypatch.chdir(tmp_path)
    body, needles, where = CASES[case]
    path = _config(tmp_path, body)
    location = None
    if where is not None:
        marker, column = where
        location = f"{_line_of(path, marker)}:{column}"
    args = [path, "--dry-run"] if dry_run else [path]
    result = _invoke(*args)
    _assert_clean_failure(result, path, *needles, where=location)
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "flambe-output").exists()


@pytest.mark.parametrize("case", sorted(set(CASES) - {"misspelled_reduce"}))
def test_parse_raises_config_error(tmp_path, case):
    body, needles, _ = CASES[case]
    exp = yaml.load_file(_config(tmp_path, body)).obj
    assert isinstance(exp, Experiment)
    with pytest.raises(ConfigError) as info:
        exp.parse()
    for needle in needles:
        assert needle in str(info.value)


def test_misspelled_top_level_key_fails_at_load(tmp_path):
    path = _config(tmp_path, VALID + "redcue:\n  train: 2\n")
    with pytest.raises(ConfigError) as info:
        yaml.load_file(path)
    assert "did you mean 'reduce'?" in str(info.value)
    assert info.value.location.line == _line_of(path, "redcue:")


def test_valid_config_parses(tmp_path):
    exp = yaml.load_file(_config(tmp_path, VALID + "reduce: {train: 2}\n")).obj
    exp.parse()
    assert exp.variant_counts() == {"model": 6, "train": 12, "eval": 2}


# ---------------------------------------------------------------------- real processes
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), str(REPO)] + ([env["PYTHONPATH"]]
                                                                     if env.get("PYTHONPATH") else []))
    return env


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_subprocess_reports_one_message(tmp_path, dry_run):
    path = _config(tmp_path, VALID + "reduce:\n  trian: 2\n")
    args = [sys.executable, "-m", "flambe.cli", path] + (["--dry-run"] if dry_run else [])
    proc = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.count("Error:") == 1
    assert f"{path}:" in proc.stderr
    assert "did you mean 'train'?" in proc.stderr
    assert proc.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["exp.yaml"]


DRY_RUN_SCRIPT = """
import sys
from flambe.cli import main
try:
    main([sys.argv[1], "--dry-run"], standalone_mode=False)
finally:
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"ray", "torch"})
    print("HEAVY=" + ",".join(heavy))
"""


def _expected_dry_run_lines(output: str) -> None:
    lines = output.splitlines()

    def line_of(stage: str) -> str:
        found = [line for line in lines if line.strip().startswith(f"{stage} ")]
        assert len(found) == 1, output
        return found[0]

    assert "6 variant(s)" in line_of("model")
    train = line_of("train")
    assert "12 variant(s)" in train and "reduce to 2" in train and "<- model" in train
    evaluation = line_of("eval")
    assert "2 variant(s)" in evaluation and "<- train" in evaluation
    assert "nothing was run" in output


def test_dry_run_prints_counts_and_imports_nothing_heavy(tmp_path):
    body = VALID.replace("save_path: {save}\n", "") + "reduce: {train: 2}\n"
    path = _config(tmp_path, body)
    proc = subprocess.run([sys.executable, "-c", DRY_RUN_SCRIPT, path], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _expected_dry_run_lines(proc.stdout)
    assert "HEAVY=\n" in proc.stdout  # neither ray nor torch was imported
    assert str(tmp_path / "flambe-output" / "output__demo") in proc.stdout
    assert sorted(os.listdir(tmp_path)) == ["exp.yaml"]  # no output directory


def test_dry_run_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path, VALID + "reduce: {train: 2}\n")
    result = _invoke(path, "--dry-run")
    assert result.exit_code == 0, result.output
    _expected_dry_run_lines(result.output)
    assert "Error" not in result.output
    assert str(tmp_path / "runs" / "output__demo") in result.output
    assert sorted(os.listdir(tmp_path)) == ["exp.yaml"]


def test_dry_run_without_reduce_counts_every_variant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke(_config(tmp_path, VALID), "--dry-run")
    assert result.exit_code == 0, result.output
    evaluation = [line for line in result.output.splitlines() if line.strip().startswith("eval ")]
    assert len(evaluation) == 1 and "12 variant(s)" in evaluation[0]
    assert "reduce to" not in result.output


# ---------------------------------------------------------------------- the output guard
def _with_existing_output(tmp_path: Path, extra: str = "") -> tuple:
    path = _config(tmp_path, VALID + extra)
    output = tmp_path / "runs" / "output__demo"
    output.mkdir(parents=True)
    (output / "x").write_text("earlier results")
    return path, output


def test_run_refuses_existing_output(tmp_path):
    path, output = _with_existing_output(tmp_path)
    exp = yaml.load_file(path).obj
    with pytest.raises(FlambeError) as info:
        exp.run()
    text = str(info.value)
    assert "--force" in text and "resume" in text
    assert str(output) in text
    assert (output / "x").read_text() == "earlier results"
    assert sorted(os.listdir(output)) == ["x"]


def test_cli_run_refuses_existing_output(tmp_path):
    path, output = _with_existing_output(tmp_path)
    result = _invoke(path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.count("Error:") == 1
    assert "--force" in result.output and "resume" in result.output
    assert sorted(os.listdir(output)) == ["x"]


def test_prepare_output(tmp_path):
    exp = Experiment(name="guard", pipeline={})
    output = tmp_path / "output__guard"
    exp._prepare_output(str(output), force=False, resume=False)  # missing: created
    assert output.is_dir() and os.listdir(output) == []
    exp._prepare_output(str(output), force=False, resume=False)  # empty: fine
    (output / "x").write_text("1")
    with pytest.raises(FlambeError) as info:
        exp._prepare_output(str(output), force=False, resume=False)
    assert "--force" in str(info.value) and "resume" in str(info.value)
    exp._prepare_output(str(output), force=False, resume=True)  # resume keeps it
    assert sorted(os.listdir(output)) == ["x"]
    exp._prepare_output(str(output), force=True, resume=False)  # force replaces it
    assert output.is_dir() and os.listdir(output) == []


# ---------------------------------------------------------------------- a stage written as a !g of components
STAGE_GRID = """\
!Experiment
name: demo
save_path: {save}
pipeline:
  model: !ToyModel
    width: !g [1, 2]
  train: !g
    - !ToyTrainer {model: !@ model, lower_is_better: true}
    - !ToyTrainer {model: !@ model, lower_is_better: LAST, lr: 0.5}
reduce: {train: 1}
"""


def test_stage_grid_keeps_the_direction_of_its_alternatives(tmp_path):
    from flambe.experiment.validate import stage_direction

    exp = yaml.load_file(_config(tmp_path, STAGE_GRID.replace("LAST", "true"))).obj
    exp.parse()
    assert exp.variant_counts() == {"model": 2, "train": 4}
    # Every alternative says lower is better, so reduce must keep the lowest metric.
    assert stage_direction(exp.pipeline["train"]) is True


def test_stage_grid_with_conflicting_directions_is_rejected(tmp_path):
    path = _config(tmp_path, STAGE_GRID.replace("LAST", "false"))
    exp = yaml.load_file(path).obj
    with pytest.raises(ConfigError) as info:
        exp.parse()
    assert "lower_is_better" in str(info.value)
    result = _invoke(path, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "lower_is_better" in result.output and "Traceback" not in result.output
