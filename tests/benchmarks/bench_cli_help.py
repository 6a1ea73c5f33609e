"""Benchmark: ``flambe --help`` must not pay for importing torch.

Target: median wall time of ``flambe --help`` <= 0.25 x median wall time of ``python -c "import torch"``,
both run as subprocesses with the interpreter running this script (7 runs each, after one warm-up each).

Run: ``.venv/bin/python tests/benchmarks/bench_cli_help.py``. Exits 1 on FAIL.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import List, Sequence

from benchlib import report

NAME = "cli_help"
TARGET_RATIO = 0.25
RUNS = 7


def wall(cmd: Sequence[str]) -> float:
    """Seconds one run of ``cmd`` takes; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def main() -> int:
    flambe_exe = os.path.join(os.path.dirname(sys.executable), "flambe")
    if not os.path.exists(flambe_exe):
        print(f"FAIL: no flambe console script next to {sys.executable}")
        report(NAME, float("nan"), f"<= {TARGET_RATIO}x", False, error="flambe script missing")
        return 1
    help_cmd = [flambe_exe, "--help"]
    torch_cmd = [sys.executable, "-c", "import torch"]

    # Warm-up (page cache, .pyc files), then alternate so drift affects both sides alike.
    wall(help_cmd)
    wall(torch_cmd)
    help_times: List[float] = []
    torch_times: List[float] = []
    for _ in range(RUNS):
        torch_times.append(wall(torch_cmd))
        help_times.append(wall(help_cmd))

    help_med = statistics.median(help_times)
    torch_med = statistics.median(torch_times)
    ratio = help_med / torch_med
    passed = ratio <= TARGET_RATIO
    print(f"flambe --help      : median {help_med * 1000:8.1f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in help_times)} ms)")
    print(f"python -c 'import torch': median {torch_med * 1000:8.1f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in torch_times)} ms)")
    print(f"ratio = {ratio:.3f}  target <= {TARGET_RATIO}  -> {'PASS' if passed else 'FAIL'}")
    report(NAME, ratio, f"<= {TARGET_RATIO}x", passed,
           flambe_help_ms=round(help_med * 1000, 1), import_torch_ms=round(torch_med * 1000, 1))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
