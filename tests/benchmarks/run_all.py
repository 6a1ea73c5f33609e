"""Run every ``bench_*.py`` next to this file, each in its own subprocess, and summarize.

Each benchmark prints its own report and one ``BENCH_RESULT {json}`` line per result (name, ratio,
target, passed, and ``gate: false`` for informational rows). This script prints the reports as they
come, then a table, and exits 1 if any gating result failed or a benchmark crashed.

Run: ``.venv/bin/python tests/benchmarks/run_all.py [-k SUBSTRING] [--timeout SECONDS]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "BENCH_RESULT "


def run_one(path: str, timeout: float) -> List[Dict[str, Any]]:
    """Run one benchmark script; return its results (a synthetic failing row if it produced none)."""
    name = os.path.splitext(os.path.basename(path))[0]
    print(f"=== {name} " + "=" * max(0, 60 - len(name)), flush=True)
    start = time.perf_counter()
    results: List[Dict[str, Any]] = []
    timed_out = False

    def pump(stream: Any) -> None:
        for line in stream:
            print(line, end="", flush=True)
            if line.startswith(PREFIX):
                try:
                    results.append(json.loads(line[len(PREFIX):]))
                except json.JSONDecodeError:
                    pass

    try:
        proc = subprocess.Popen([sys.executable, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            rc = proc.wait()
        reader.join(timeout=5)
    except OSError as exc:
        rc = -1
        print(f"could not start {path}: {exc}")
    elapsed = time.perf_counter() - start
    print(f"--- {name}: exit {rc}, {elapsed:.1f} s{' (timed out)' if timed_out else ''}\n", flush=True)
    gated = [r for r in results if r.get("gate", True)]
    if not gated:
        why = "timed out" if timed_out else f"exit {rc}, no result"
        results.append({"name": name, "ratio": None, "target": "-", "passed": False, "error": why})
    elif rc != 0 and all(r.get("passed") for r in gated):
        # The script failed after reporting success (a crash in clean-up, an assertion): count it.
        results.append({"name": name, "ratio": None, "target": "-", "passed": False, "error": f"exit {rc}"})
    for result in results:
        result.setdefault("script", name)
        result["seconds"] = elapsed
    return results


def fmt_ratio(value: Optional[float]) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.3f}x"


def declared_timeout(path: str) -> float:
    """A benchmark that needs longer declares ``BENCH_TIMEOUT = <seconds>`` at the top level."""
    with open(path, encoding="utf-8") as handle:
        match = re.search(r"^BENCH_TIMEOUT = (\d+)", handle.read(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run flambe's benchmarks.")
    parser.add_argument("-k", dest="select", default=None, help="only benchmarks whose file name contains this")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per benchmark (default 300)")
    args = parser.parse_args(argv)

    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if args.select:
        scripts = [s for s in scripts if args.select in os.path.basename(s)]
    if not scripts:
        print("no benchmarks found")
        return 1
    print(f"python {sys.version.split()[0]} at {sys.executable}; {os.cpu_count()} CPUs\n", flush=True)

    rows: List[Dict[str, Any]] = []
    for script in scripts:
        rows.extend(run_one(script, max(args.timeout, declared_timeout(script))))

    failed = [r for r in rows if r.get("gate", True) and not r.get("passed")]
    name_w = max(len("benchmark"), *(len(str(r["name"])) for r in rows))
    target_w = max(len("target"), *(len(str(r.get("target", ""))) for r in rows))
    header = f"{'benchmark':<{name_w}}  {'ratio':>9}  {'target':<{target_w}}  result"
    print("=" * len(header))
    print(header)
    print("-" * len(header))
    for r in rows:
        if not r.get("gate", True):
            status = "INFO (would " + ("PASS" if r.get("passed") else "FAIL") + ")"
        else:
            status = "PASS" if r.get("passed") else "FAIL"
        if r.get("error"):
            status += f" ({r['error']})"
        elif r.get("correct") is False:
            status += " (wrong result)"
        target = str(r.get("target", ""))
        print(f"{r['name']:<{name_w}}  {fmt_ratio(r.get('ratio')):>9}  {target:<{target_w}}  {status}")
    print("=" * len(header))
    gated = [r for r in rows if r.get("gate", True)]
    print(f"{len(gated) - len(failed)}/{len(gated)} passed" + (f"; failed: {', '.join(r['name'] for r in failed)}"
                                                            if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
