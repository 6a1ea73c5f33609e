"""Helpers shared by the ``bench_*.py`` scripts next to this file (not a benchmark itself).

The scripts run as ``python tests/benchmarks/bench_x.py``, so this folder is ``sys.path[0]`` and they import
this module as ``from benchlib import ...``.
"""

from __future__ import annotations

import json
import statistics
from typing import Any, Dict, Optional, Sequence, Tuple


def report(name: str, ratio: float, target: str, passed: bool, **extra: object) -> None:
    """Print the machine-readable result line that run_all.py collects."""
    print("BENCH_RESULT " + json.dumps({"name": name, "ratio": round(ratio, 4), "target": target,
                                        "passed": passed, **extra}))


def conclude(name: str, base_rates: Sequence[float], ours_rates: Sequence[float], target: float,
             problem: Optional[str], base_label: str, ours_label: str, unit: str, *, keys: Tuple[str, str],
             digits: int = 0, ratio_digits: int = 2, note: str = "") -> int:
    """Compare the medians of two sides' rates (higher is better) against ``ours / base >= target``.

    Prints the summary line (``median: <base_label> <rate> <unit>, <ours_label> <rate> <unit>, ratio ...:
    PASS|FAIL<note>``, rates with ``digits`` decimals, the ratio with ``ratio_digits``) and the
    ``BENCH_RESULT`` line, whose extra keys are ``correct``, ``keys[0]`` and ``keys[1]`` (the two medians,
    rounded to 0.1) and ``error`` (``problem``, when there is one). The result passes when the ratio meets
    the target and ``problem`` is None. Returns the exit code: 0 on PASS, 1 on FAIL.
    """
    base = statistics.median(base_rates)
    ours = statistics.median(ours_rates)
    ratio = ours / base
    passed = ratio >= target and problem is None
    print(f"median: {base_label} {base:.{digits}f} {unit}, {ours_label} {ours:.{digits}f} {unit}, "
          f"ratio {ratio:.{ratio_digits}f}x (target >= {target}x): {'PASS' if passed else 'FAIL'}{note}")
    extra: Dict[str, Any] = {"correct": problem is None, keys[0]: round(base, 1), keys[1]: round(ours, 1)}
    if problem:
        extra["error"] = problem
    report(name, ratio, f">= {target}x", passed, **extra)
    return 0 if passed else 1
