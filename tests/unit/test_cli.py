"""Unit tests for the ``flambe`` command (click), run in-process with CliRunner."""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List

import pytest
from click.testing import CliRunner

from flambe.cli import main
from flambe.compile import CompilationError, Component, TagError
from flambe.runnable import Runnable

NS = __name__.split(".")[0]


class CliPart(Component):
    def __init__(self, size: int = 1) -> None:
        self.size = size


class CliRecorder(Runnable):
    """Records what each run saw."""

    runs: List[Dict[str, Any]] = []

    def __init__(self, name: str = "rec", part=None) -> None:
        self.name = name
        self.part = part

    def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> None:
        section = dict(self.config["SECRET"]) if self.config.has_section("SECRET") else None
        CliRecorder.runs.append({
            "name": self.name, "force": force, "debug": debug, "secrets": section,
            "extensions": dict(self.extensions), "part": self.part().size if self.part is not None else None,
        })


class CliFailing(Runnable):
    def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> None:
        raise CompilationError("the runnable failed on purpose", hint="nothing to fix")


@pytest.fixture(autouse=True)
def _clear_runs():
    CliRecorder.runs.clear()
    yield
    CliRecorder.runs.clear()


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_help():
    result = _invoke("--help")
    assert result.exit_code == 0
    assert "CONFIG" in result.output
    for option in ("--secrets", "--force", "--debug", "--verbose", "--install-extensions"):
        assert option in result.output
    assert _invoke("-h").exit_code == 0


def test_version():
    from flambe import __version__
    result = _invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_no_argument_is_usage_error():
    result = _invoke()
    assert result.exit_code == 2
    assert "Usage" in result.output


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    result = _invoke(missing)
    assert result.exit_code == 2
    assert "nope.yaml" in result.output
    assert "does not exist" in result.output
    assert "Traceback" not in result.output
    assert "-v" in result.output


def test_top_level_component_is_not_runnable(tmp_path):
    path = _write(tmp_path, "comp.yaml", "!CliPart {size: 2}\n")
    result = _invoke(path)
    assert result.exit_code == 2
    assert "Runnable" in result.output
    assert "CliPart" in result.output
    assert "Traceback" not in result.output


def test_top_level_plain_mapping_is_not_runnable(tmp_path):
    path = _write(tmp_path, "plain.yaml", "a: 1\n")
    result = _invoke(path)
    assert result.exit_code == 2
    assert "Runnable" in result.output


def test_unknown_tag_location_and_hint(tmp_path):
    path = _write(tmp_path, "bad.yaml", """
        !CliRecorder
        name: x
        part: !CliPrat {size: 2}
    """)
    result = _invoke(path)
    assert result.exit_code == 2
    assert f"{path}:3:7" in result.output
    assert "did you mean" in result.output
    assert "CliPart" in result.output
    assert "Traceback" not in result.output
    assert CliRecorder.runs == []


def test_malformed_yaml_location(tmp_path):
    path = _write(tmp_path, "broken.yaml", """
        !CliRecorder
        name: [unclosed
        part: 3
    """)
    result = _invoke(path)
    assert result.exit_code == 2
    assert f"{path}:3:" in result.output
    assert "Traceback" not in result.output


def test_unknown_argument_of_runnable(tmp_path):
    path = _write(tmp_path, "arg.yaml", "!CliRecorder\nnmae: x\n")
    result = _invoke(path)
    assert result.exit_code == 2
    assert f"{path}:2:1" in result.output
    assert "did you mean 'name'" in result.output


def test_verbose_reraises(tmp_path):
    path = _write(tmp_path, "bad.yaml", "!CliRecorder\npart: !CliPrat {}\n")
    result = _invoke(path, "-v")
    assert result.exit_code != 0
    assert isinstance(result.exception, TagError)
    assert result.exception.location.line == 2
    result = _invoke(path, "--verbose")
    assert isinstance(result.exception, TagError)


def test_runnable_runs(tmp_path):
    path = _write(tmp_path, "ok.yaml", """
        !CliRecorder
        name: hello
        part: !CliPart {size: 4}
    """)
    result = _invoke(path)
    assert result.exit_code == 0, result.output
    assert len(CliRecorder.runs) == 1
    run = CliRecorder.runs[0]
    assert run["name"] == "hello"
    assert run["part"] == 4
    assert run["force"] is False and run["debug"] is False
    assert run["secrets"] is None
    assert run["extensions"] == {}


def test_namespaced_runnable_tag(tmp_path):
    path = _write(tmp_path, "ns.yaml", f"!{NS}.CliRecorder {{name: spaced}}\n")
    result = _invoke(path)
    assert result.exit_code == 0, result.output
    assert CliRecorder.runs[0]["name"] == "spaced"


def test_force_and_debug_reach_run(tmp_path):
    path = _write(tmp_path, "ok.yaml", "!CliRecorder {name: fd}\n")
    assert _invoke(path, "--force").exit_code == 0
    assert _invoke(path, "--debug").exit_code == 0
    assert _invoke(path, "-f", "-d").exit_code == 0
    assert [(r["force"], r["debug"]) for r in CliRecorder.runs] == [(True, False), (False, True), (True, True)]


def test_secrets_visible_in_config(tmp_path):
    config = _write(tmp_path, "ok.yaml", "!CliRecorder {name: s}\n")
    secrets = _write(tmp_path, "secrets.ini", """
        [SECRET]
        TOKEN = abc123
        region = eu-west-1
    """)
    result = _invoke(config, "--secrets", secrets)
    assert result.exit_code == 0, result.output
    seen = CliRecorder.runs[0]["secrets"]
    assert seen["token"] == "abc123"  # ConfigParser keys are case-insensitive
    assert seen["region"] == "eu-west-1"
    result = _invoke(config, "-s", secrets)
    assert result.exit_code == 0


def test_secrets_read_by_section_and_key(tmp_path):
    class CliSecretReader(Runnable):
        seen: List[str] = []

        def run(self, force: bool = False, debug: bool = False, **kwargs: Any) -> None:
            CliSecretReader.seen.append(self.config["SECTION"]["KEY"])

    config = _write(tmp_path, "ok.yaml", "!CliSecretReader\n")
    secrets = _write(tmp_path, "s.ini", "[SECTION]\nKEY = value-42\n")
    result = _invoke(config, "--secrets", secrets)
    assert result.exit_code == 0, result.output
    assert CliSecretReader.seen == ["value-42"]


def test_missing_secrets_file(tmp_path):
    config = _write(tmp_path, "ok.yaml", "!CliRecorder {name: s}\n")
    result = _invoke(config, "--secrets", str(tmp_path / "absent.ini"))
    assert result.exit_code == 2
    assert "absent.ini" in result.output
    assert "Traceback" not in result.output
    assert CliRecorder.runs == []


def test_invalid_secrets_file(tmp_path):
    config = _write(tmp_path, "ok.yaml", "!CliRecorder {name: s}\n")
    secrets = _write(tmp_path, "bad.ini", "no section header here\n")
    result = _invoke(config, "--secrets", secrets)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert CliRecorder.runs == []


def test_error_inside_run_exits_cleanly(tmp_path):
    config = _write(tmp_path, "fail.yaml", "!CliFailing\n")
    result = _invoke(config)
    assert result.exit_code == 2
    assert "failed on purpose" in result.output
    assert "Traceback" not in result.output


def test_secrets_not_in_runnable_yaml(tmp_path):
    from flambe.compile import yaml

    config = _write(tmp_path, "ok.yaml", "!CliRecorder {name: s}\n")
    secrets = _write(tmp_path, "s.ini", "[SECRET]\nTOKEN = hush\n")
    runnable = yaml.load_file(config).obj
    runnable.inject_secrets(secrets)
    assert "hush" not in yaml.dump(runnable)
