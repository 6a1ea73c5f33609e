"""Benchmark: the overhead flambe adds to Ray Tune for many small trials.

40 one-step variants of a trivial component (``!g`` over 10 x 4 values) through ``flambe exp.yaml``,
against the same 40 trials (build the component, call ``run()`` and ``metric()``) through a bare
``ray.tune.Tuner`` with a class Trainable and ``reuse_actors=True``. Both run as fresh subprocesses
(``ray.init`` and shutdown included), alternating, 3 runs each; the medians are compared.
Both get the same Ray settings (all CPUs, no dashboard, no per-result console output or result files).

Target: flambe <= 1.25 x bare Tuner.

Run: ``.venv/bin/python tests/benchmarks/bench_experiment.py``. Exits 1 on FAIL.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from benchlib import report

NAME = "experiment_40_trials"
TARGET_RATIO = 1.25
RUNS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
FLAMBE = os.path.join(os.path.dirname(sys.executable), "flambe")

CONFIG = """\
flambe_testkit: flambe_testkit
---
!Experiment
name: bench
save_path: {out}
pipeline:
  model: !ToyModel
    width: !g [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    depth: !g [1, 2, 3, 4]
"""

BARE = textwrap.dedent("""\
    import itertools, logging, ray
    from ray import tune
    from flambe_testkit import ToyModel

    class Trial(tune.Trainable):
        def setup(self, config):
            self.model = ToyModel(width=config["width"], depth=config["depth"])
        def step(self):
            more = self.model.run()
            return {"metric": self.model.metric(), "done": not more}
        def reset_config(self, config):
            self.setup(config)
            return True
        def save_checkpoint(self, checkpoint_dir):
            return {"calls": self.model.calls}
        def load_checkpoint(self, checkpoint):
            self.model.calls = checkpoint["calls"]

    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    tuner = tune.Tuner(tune.with_resources(Trial, {"cpu": 1}),
                       param_space={"width": tune.grid_search(list(range(1, 11))),
                                    "depth": tune.grid_search([1, 2, 3, 4])},
                       tune_config=tune.TuneConfig(metric="metric", mode="max", reuse_actors=True),
                       run_config=tune.RunConfig(storage_path={storage!r}, name="bare", verbose=0,
                                                 checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)))
    results = tuner.fit()
    assert len(results) == 40 and not results.errors, results.errors
    ray.shutdown()
""")


def timed(cmd, env) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return elapsed


def main() -> int:
    env = dict(os.environ, PYTHONPATH=FIXTURES + os.pathsep + os.environ.get("PYTHONPATH", ""),
               RAY_AIR_NEW_OUTPUT="0", TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1")
    flambe_times, bare_times = [], []
    with tempfile.TemporaryDirectory(prefix="flambe-bench-") as tmp:
        config = os.path.join(tmp, "exp.yaml")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(out=os.path.join(tmp, "out")))
        script = os.path.join(tmp, "bare.py")
        with open(script, "w") as handle:
            handle.write(BARE.replace("{storage!r}", repr(os.path.join(tmp, "bare-store"))))
        for _ in range(RUNS):
            bare_times.append(timed([sys.executable, script], env))
            flambe_times.append(timed([FLAMBE, config, "--force"], env))
        done = sum(1 for _ in os.scandir(os.path.join(tmp, "out", "output__bench", "model")))
    flambe_s, bare_s = statistics.median(flambe_times), statistics.median(bare_times)
    ratio = flambe_s / bare_s
    passed = ratio <= TARGET_RATIO and done == 40
    print(f"bare Tuner: median {bare_s:.2f} s {[round(t, 2) for t in bare_times]}")
    print(f"flambe:     median {flambe_s:.2f} s {[round(t, 2) for t in flambe_times]} ({done} variant dirs)")
    print(f"ratio {ratio:.3f} (target <= {TARGET_RATIO}): {'PASS' if passed else 'FAIL'}")
    report(NAME, ratio, f"<= {TARGET_RATIO}", passed, flambe_s=round(flambe_s, 3), bare_s=round(bare_s, 3),
           correct=done == 40)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
