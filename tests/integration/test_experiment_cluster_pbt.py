"""Population Based Training on a stage, and running an experiment on an existing Ray cluster (-c)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def _env(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _flambe(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flambe.cli", *args], env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def _variants(stage_dir) -> list:
    out = []
    for name in sorted(os.listdir(stage_dir)):
        with open(os.path.join(stage_dir, name, "variant.json")) as handle:
            out.append(json.load(handle))
    return out


def test_pbt_mutates_options_and_keeps_run_counts(tmp_path):
    config = tmp_path / "pbt.yaml"
    config.write_text(textwrap.dedent(f"""\
        flambe_testkit: flambe_testkit
        ---
        !Experiment
        name: pbt
        save_path: {tmp_path / 'out'}
        pipeline:
          model: !ToyModel
            width: 2
          train: !ToyTrainer
            model: !@ model
            lr: !g [0.1, 0.2, 0.3, 0.4]
            steps: 8
        schedulers:
          train: !ray.PopulationBasedTraining
            time_attr: training_iteration
            perturbation_interval: 2
            synch: true
            hyperparam_mutations:
              lr: !uniform [0.1, 1.0]
        """))
    result = _flambe(str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    variants = _variants(tmp_path / "out" / "output__pbt" / "train")
    assert len(variants) == 4
    assert all(v["status"] == "done" and v["calls"] == 8 for v in variants), variants
    # Synchronous PBT replaces the worst trial's lr at every interval: some final lr is not an initial one.
    assert {v["params"]["lr"] for v in variants} - {0.1, 0.2, 0.3, 0.4}, variants


@pytest.fixture()
def ray_cluster():
    """A Ray head node started with ``ray start --head --block``; killing its process group stops it."""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    if ray is None:
        pytest.skip("the ray command is not installed next to this Python")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    log = open(os.path.join(temp, "head.log"), "w")
    from ray.util import get_node_ip_address
    node_ip = get_node_ip_address()  # where Ray puts this machine's node (and where drivers look for it)
    head = subprocess.Popen([ray, "start", "--head", "--block", f"--port={port}", f"--node-ip-address={node_ip}",
                             "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}",
                             "--disable-usage-stats"], env=_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield f"{node_ip}:{port}", head
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_experiment_runs_on_an_existing_ray_cluster(tmp_path, ray_cluster):
    address, head = ray_cluster
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(f"!RayCluster\naddress: {address}\n")
    config = tmp_path / "exp.yaml"
    config.write_text(textwrap.dedent(f"""\
        flambe_testkit: flambe_testkit
        ---
        !Experiment
        name: remote
        save_path: {tmp_path / 'out'}
        pipeline:
          model: !ToyModel
            width: !g [1, 2]
          eval: !ToyEval
            model: !@ model
        """))
    deadline = time.monotonic() + 120
    while True:  # the head node takes a few seconds to accept drivers
        described = _flambe(str(cluster))
        if described.returncode == 0 or time.monotonic() > deadline or head.poll() is not None:
            break
    assert described.returncode == 0, described.stdout + described.stderr
    assert f"Ray cluster at {address}: 1 node(s)" in described.stdout

    dry = _flambe(str(config), "-c", str(cluster), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "eval !ToyEval: 2 variant(s)" in dry.stdout

    result = _flambe(str(config), "-c", str(cluster))
    assert result.returncode == 0, result.stdout + result.stderr
    evals = _variants(tmp_path / "out" / "output__remote" / "eval")
    assert sorted(v["inherited"]["model.width"] for v in evals) == [1, 2]
    assert all(v["status"] == "done" for v in evals)

    debug = tmp_path / "debug.yaml"
    debug.write_text(config.read_text().replace("name: remote", "name: remote\ndebug: true"))
    refused = _flambe(str(debug), "-c", str(cluster))
    assert refused.returncode == 2
    assert "'debug: true' works only for local runs" in refused.stderr
    assert "Traceback" not in refused.stderr
