"""Benchmark: loading and building a config of 2,000 components.

The config is one ``!BenchRoot`` whose ``children`` list holds 2,000
``!BenchLeaf {a: <int>, b: <str>, c: [1, 2, 3], d: {x: 1.5}}`` components. The timed work is
``yaml.load(text)`` plus calling the returned Schema to build the objects.

Targets (both must hold): median <= 1.0 s absolute, and median <= 5 x the median of a plain
``ruamel.yaml.YAML(typ='rt').load(text)`` of the same text (ruamel's default round-trip loader,
which accepts unknown tags). Median of 5 runs each, alternating, after one warm-up each.

Run: ``.venv/bin/python tests/benchmarks/bench_yaml_build.py``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from benchlib import report
from ruamel.yaml import YAML

from flambe.compile import Component, Schema, yaml

NAME = "yaml_build"
TARGET_RATIO = 5.0
TARGET_SECONDS = 1.0
RUNS = 5
NUM_LEAVES = 2000


class BenchLeaf(Component):
    def __init__(self, a: int, b: str, c: List[int], d: Dict[str, float]) -> None:
        self.a = a
        self.b = b
        self.c = c
        self.d = d


class BenchRoot(Component):
    def __init__(self, children: List[BenchLeaf]) -> None:
        self.children = children


def make_config(n: int) -> str:
    lines = ["!BenchRoot", "children:"]
    lines.extend(f"  - !BenchLeaf {{a: {i}, b: leaf{i}, c: [1, 2, 3], d: {{x: 1.5}}}}" for i in range(n))
    return "\n".join(lines) + "\n"


def flambe_load_build(text: str) -> Any:
    schema = yaml.load(text)
    return schema()


def ruamel_load(text: str) -> Any:
    return YAML(typ="rt").load(text)


def timed(fn: Any, text: str) -> float:
    gc.collect()
    start = time.perf_counter()
    result = fn(text)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def check(text: str, n: int) -> List[str]:
    """Problems with what the flambe load built (empty when it is right)."""
    schema = yaml.load(text)
    if not isinstance(schema, Schema):
        return [f"yaml.load returned a {type(schema).__name__}, expected a Schema"]
    root = schema()
    problems = []
    if not isinstance(root, BenchRoot):
        return [f"building gave a {type(root).__name__}, expected BenchRoot"]
    if len(root.children) != n:
        problems.append(f"{len(root.children)} children, expected {n}")
    for i, leaf in enumerate(root.children):
        if not isinstance(leaf, BenchLeaf) or (leaf.a, leaf.b, list(leaf.c), dict(leaf.d)) != \
                (i, f"leaf{i}", [1, 2, 3], {"x": 1.5}):
            problems.append(f"child {i} is wrong: {leaf!r}")
            break
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=NUM_LEAVES)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)

    text = make_config(args.leaves)
    print(f"config: {args.leaves + 1} components, {len(text.splitlines())} lines, {len(text) / 1024:.0f} KiB")
    problems = check(text, args.leaves)  # also the flambe warm-up
    ruamel_load(text)  # warm-up
    flambe_times: List[float] = []
    ruamel_times: List[float] = []
    for _ in range(args.runs):
        ruamel_times.append(timed(ruamel_load, text))
        flambe_times.append(timed(flambe_load_build, text))

    flambe_med = statistics.median(flambe_times)
    ruamel_med = statistics.median(ruamel_times)
    ratio = flambe_med / ruamel_med
    correct = not problems
    passed = correct and ratio <= TARGET_RATIO and flambe_med <= TARGET_SECONDS
    print(f"flambe yaml.load + build     : median {flambe_med:.3f} s  "
          f"(runs: {', '.join(f'{t:.3f}' for t in flambe_times)})")
    print(f"ruamel YAML(typ='rt').load   : median {ruamel_med:.3f} s  "
          f"(runs: {', '.join(f'{t:.3f}' for t in ruamel_times)})")
    if problems:
        print("correctness: FAIL")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print(f"correctness: built a BenchRoot with {args.leaves} correct BenchLeaf children")
    print(f"ratio = {ratio:.3f}  target <= {TARGET_RATIO}; absolute {flambe_med:.3f} s  target <= "
          f"{TARGET_SECONDS} s  -> {'PASS' if passed else 'FAIL'}")
    report(NAME, ratio, f"<= {TARGET_RATIO}x and <= {TARGET_SECONDS:g} s", passed, correct=correct,
           flambe_s=round(flambe_med, 4), ruamel_rt_s=round(ruamel_med, 4))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
