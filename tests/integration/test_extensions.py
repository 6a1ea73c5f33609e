"""Extensions end to end: real pip installs (local path and git URL) through the `flambe` command."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAMBE = os.path.join(os.path.dirname(sys.executable), "flambe")


def _make_extension(where: str, module: str) -> str:
    pkg = os.path.join(where, module)
    os.makedirs(os.path.join(pkg, module))
    with open(os.path.join(pkg, "setup.py"), "w") as f:
        f.write(f"from setuptools import setup\nsetup(name='{module.replace('_', '-')}', version='1.0.0',"
                f" packages=['{module}'])\n")
    with open(os.path.join(pkg, module, "__init__.py"), "w") as f:
        f.write(textwrap.dedent("""
            from flambe.runnable import Runnable

            class Touch(Runnable):
                def __init__(self, path: str, text: str = "done"):
                    self.path = path
                    self.text = text

                def run(self, force=False, debug=False, **kwargs):
                    with open(self.path, "w") as handle:
                        handle.write(f"{self.text} force={force} debug={debug}")
            """))
    return pkg


def _flambe(*args, cwd=None, env=None):
    return subprocess.run([FLAMBE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=240)


def _uninstall(module: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", module.replace("_", "-")],
                   capture_output=True)


def test_local_extension_missing_then_installed_with_i(tmp_path):
    module = f"flambe_tmp_ext_{uuid.uuid4().hex[:8]}"
    _make_extension(str(tmp_path), module)
    out = tmp_path / "out.txt"
    config = tmp_path / "run.yaml"
    config.write_text(f"{module}: ./{module}\n---\n!{module}.Touch\npath: {out}\ntext: hi\n")
    try:
        missing = _flambe(str(config))
        assert missing.returncode == 2
        assert f"Extension '{module}'" in missing.stderr and "-i" in missing.stderr
        assert "Traceback" not in missing.stderr
        installed = _flambe(str(config), "-i", "--force", "-d")
        assert installed.returncode == 0, installed.stderr
        assert out.read_text() == "hi force=True debug=True"
        assert module.replace("_", "-") in installed.stderr  # pip's changes are listed
        # Installed now: runs without -i.
        out.unlink()
        again = _flambe(str(config))
        assert again.returncode == 0, again.stderr
        assert out.read_text() == "hi force=False debug=False"
    finally:
        _uninstall(module)


def test_git_extension_is_cloned_into_flambe_extensions(tmp_path):
    module = f"flambe_git_ext_{uuid.uuid4().hex[:8]}"
    repo = _make_extension(str(tmp_path / "src"), module)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", repo]
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "ext"], check=True)
    bare = tmp_path / f"{module}.git"
    subprocess.run(["git", "clone", "-q", "--bare", repo, str(bare)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    out = tmp_path / "git.txt"
    config = tmp_path / "git.yaml"
    config.write_text(f"{module}: file://{bare}\n---\n!{module}.Touch\npath: {out}\n")
    try:
        result = _flambe(str(config), "-i", env=env)
        assert result.returncode == 0, result.stderr
        assert out.read_text().startswith("done")
        assert (home / ".flambe" / "extensions" / module / "setup.py").exists()
        # A second -i pulls instead of cloning again.
        result = _flambe(str(config), "-i", env=env)
        assert result.returncode == 0, result.stderr
    finally:
        _uninstall(module)


def test_extension_experiment_example(tmp_path):
    import json

    import flambe
    result = _flambe(os.path.join(ROOT, "configs", "extension.yaml"), "-i", "--force", cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Experiment extension" in result.stdout and "4 (kept 1)" in result.stdout
    output = tmp_path / "flambe-output" / "output__extension"
    assert len(os.listdir(output / "model")) == 2 and len(os.listdir(output / "train")) == 4
    (evaluated,) = os.listdir(output / "evaluate")
    trains = {}
    for name in os.listdir(output / "train"):
        with open(output / "train" / name / "variant.json") as handle:
            trains[name] = json.load(handle)
    best = min(trains.values(), key=lambda v: v["metric"])  # FitLinear: lower validation MSE is better
    with open(output / "evaluate" / evaluated / "variant.json") as handle:
        assert json.load(handle)["parents"]["train"] == best["id"]
    trainer = flambe.load(best["checkpoint"])
    assert trainer.epoch == 5 and abs(trainer.metric() - best["metric"]) < 1e-9


def test_report_runnable_with_shipped_example_extension(tmp_path):
    result = _flambe(os.path.join(ROOT, "configs", "report.yaml"), "-i", "--force", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Hello, FLAMBE!!!" in result.stdout
    assert "loaded back identical: True" in result.stdout
    saved = tmp_path / "flambe-output" / "report" / "model"
    assert (saved / "config.yaml").read_text().startswith("flambe_example_ext:")


def test_load_auto_install_installs_recorded_extension(tmp_path):
    module = f"flambe_auto_ext_{uuid.uuid4().hex[:8]}"
    pkg = _make_extension(str(tmp_path), module)
    with open(os.path.join(pkg, module, "__init__.py"), "a") as f:
        f.write(textwrap.dedent("""
            from flambe.compile import Component

            class Box(Component):
                def __init__(self, size: int = 1):
                    self.size = size
            """))
    save_dir = tmp_path / "saved"
    config = tmp_path / "box.yaml"
    config.write_text(f"{module}: {pkg}\n---\n!{module}.Box\nsize: 7\n")
    script = textwrap.dedent(f"""
        import sys, flambe
        from flambe.compile import yaml
        mode = sys.argv[1]
        if mode == "save":
            obj = yaml.load_file({str(config)!r}, install_extensions=True).obj()
            flambe.save(obj, {str(save_dir)!r})
        else:
            print(flambe.load({str(save_dir)!r}, auto_install=mode == "auto").size)
        """)
    try:
        saved = subprocess.run([sys.executable, "-c", script, "save"], capture_output=True, text=True)
        assert saved.returncode == 0, saved.stderr
        assert (save_dir / "config.yaml").read_text().startswith(f"{module}: {pkg}")
        _uninstall(module)
        refused = subprocess.run([sys.executable, "-c", script, "plain"], capture_output=True, text=True)
        assert refused.returncode != 0 and f"Extension '{module}'" in refused.stderr
        loaded = subprocess.run([sys.executable, "-c", script, "auto"], capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip() == "7"
    finally:
        _uninstall(module)
