"""Benchmark: hierarchical ``flambe.save`` + ``flambe.load`` versus a plain torch state-dict round trip.

A nested flambe model (an embedder, a projection, a stack of 2048x2048 blocks and a head, each its own
``flambe.nn.Module``; about 57M parameters) is saved and loaded both ways, alternating baseline and
flambe, 5 times each, every run in a fresh directory on the same filesystem (saved files are deleted
outside the timed region).

Target: median(flambe.save + flambe.load) <= 1.15 x median(torch.save(state_dict) + torch.load).
The loaded model's tensors must equal the original's (torch.equal).

Run: ``.venv/bin/python tests/benchmarks/bench_save_load.py [--tmpdir DIR]``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from benchlib import report

import flambe
from flambe.nn import Module

NAME = "save_load"
TARGET_RATIO = 1.15
RUNS = 5


# ---------------------------------------------------------------------- the model
class Embedder(Module):
    def __init__(self, num_embeddings: int = 50_000, dim: int = 256) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(num_embeddings, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)


class Projection(Module):
    def __init__(self, in_dim: int = 256, out_dim: int = 2048) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Block(Module):
    def __init__(self, dim: int = 2048) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.linear(x)) + x)


class Stack(Module):
    def __init__(self, blocks: Sequence[Block]) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Head(Module):
    def __init__(self, dim: int = 2048, num_classes: int = 1000) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class BenchModel(Module):
    def __init__(self, embedder: Embedder, projection: Projection, stack: Stack, head: Head) -> None:
        super().__init__()
        self.embedder = embedder
        self.projection = projection
        self.stack = stack
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stack(self.projection(self.embedder(x))))


def make_model(num_blocks: int = 10) -> BenchModel:
    return BenchModel(embedder=Embedder(50_000, 256), projection=Projection(256, 2048),
                      stack=Stack([Block(2048) for _ in range(num_blocks)]), head=Head(2048, 1000))


# ---------------------------------------------------------------------- helpers
def dir_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def compare(original: torch.nn.Module, loaded: Any) -> List[str]:
    """Problems found comparing the loaded model with the original (empty when they match)."""
    problems: List[str] = []
    if type(loaded) is not type(original):
        return [f"loaded a {type(loaded).__name__}, expected {type(original).__name__}"]
    want = original.state_dict()
    got = loaded.state_dict()
    if list(want) != list(got):
        problems.append(f"state keys differ: missing {sorted(set(want) - set(got))[:5]}, "
                        f"unexpected {sorted(set(got) - set(want))[:5]}")
    for key, tensor in want.items():
        other = got.get(key)
        if other is None:
            continue
        if other.is_meta:
            problems.append(f"{key} is still on the meta device")
        elif other.dtype != tensor.dtype or other.shape != tensor.shape or not torch.equal(other, tensor):
            problems.append(f"{key} differs")
    for name, child in original.named_modules():
        if isinstance(child, Module):
            other_child = loaded.get_submodule(name) if name else loaded
            if type(other_child) is not type(child):
                problems.append(f"sub-module '{name}' is a {type(other_child).__name__}, "
                                f"expected {type(child).__name__}")
    return problems


def settle() -> None:
    """Outside the timed region: flush dirty pages left by earlier runs and collect garbage, so the
    write-back of one run's 200+ MiB does not land in the next run's timing."""
    if hasattr(os, "sync"):
        os.sync()
    gc.collect()


def time_baseline(model: torch.nn.Module, run_dir: str) -> Tuple[float, float, Any]:
    """(save seconds, load seconds, loaded) for the plain torch state-dict round trip."""
    path = os.path.join(run_dir, "state_dict.pt")
    settle()
    start = time.perf_counter()
    torch.save(model.state_dict(), path)
    mid = time.perf_counter()
    loaded = torch.load(path)
    end = time.perf_counter()
    return mid - start, end - mid, loaded


def time_flambe(model: torch.nn.Module, run_dir: str) -> Tuple[float, float, Any]:
    """(save seconds, load seconds, loaded) for flambe's hierarchical save and load."""
    path = os.path.join(run_dir, "model")
    settle()
    start = time.perf_counter()
    flambe.save(model, path)
    mid = time.perf_counter()
    loaded = flambe.load(path)
    end = time.perf_counter()
    return mid - start, end - mid, loaded


def measure(model: torch.nn.Module, root: str, runs: int) -> Dict[str, Any]:
    """Alternate baseline and flambe ``runs`` times each, every run in a fresh directory."""
    out: Dict[str, Any] = {"baseline": [], "flambe": [], "problems": [], "sizes": {}}
    # Warm-up: lazy imports, signature caches, the write path.
    for fn in (time_baseline, time_flambe):
        warm = tempfile.mkdtemp(dir=root)
        fn(model, warm)
        shutil.rmtree(warm)
    for i in range(runs):
        for side, fn in (("baseline", time_baseline), ("flambe", time_flambe)):
            run_dir = tempfile.mkdtemp(prefix=f"{side}-{i}-", dir=root)
            save_s, load_s, loaded = fn(model, run_dir)
            out[side].append((save_s, load_s))
            out["sizes"][side] = dir_size(run_dir)
            if side == "flambe" and i == 0:
                out["problems"] = compare(model, loaded)
            elif side == "baseline":
                assert list(loaded) == list(model.state_dict())
            del loaded
            shutil.rmtree(run_dir)
        (bs, bl), (fs, fl) = out["baseline"][-1], out["flambe"][-1]
        print(f"  run {i + 1}: baseline {bs + bl:.3f} s (save {bs:.3f} + load {bl:.3f})   "
              f"flambe {fs + fl:.3f} s (save {fs:.3f} + load {fl:.3f})")
    return out


def summarize(result: Dict[str, Any]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for side in ("baseline", "flambe"):
        out[f"{side}_save"] = statistics.median(save for save, _ in result[side])
        out[f"{side}_load"] = statistics.median(load for _, load in result[side])
        out[f"{side}_total"] = statistics.median(save + load for save, load in result[side])
    return out


def module_variant(runs: int, tmpdir: Optional[str], blocks: int) -> Optional[Dict[str, Any]]:
    """Run the same benchmark in a child process where the model classes come from an importable module
    (``bench_save_load``) instead of ``__main__`` -- how user models normally live. Informational."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r}); import bench_save_load as b; "
            f"sys.exit(b.main(['--runs', '{runs}', '--blocks', '{blocks}', '--no-module-variant', "
            f"'--name', 'save_load[classes in a module]', '--info']"
            + (f" + ['--tmpdir', {tmpdir!r}]" if tmpdir else "") + "))")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    shown = [line for line in proc.stdout.rstrip().splitlines() if not line.startswith("BENCH_RESULT ")]
    print("\n".join("  | " + line for line in shown))
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmpdir", default=None, help="where to write the saves (default: the system temp dir)")
    parser.add_argument("--blocks", type=int, default=10, help="number of 2048x2048 blocks (default 10)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each side (default {RUNS})")
    parser.add_argument("--module-runs", type=int, default=3,
                        help="runs of each side for the informational classes-in-a-module variant (default 3)")
    parser.add_argument("--no-module-variant", action="store_true", help="skip the classes-in-a-module variant")
    parser.add_argument("--name", default=NAME, help=argparse.SUPPRESS)
    parser.add_argument("--info", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = make_model(args.blocks)
    model.eval()
    num_params = model.num_parameters()
    print(f"model: {num_params / 1e6:.1f}M parameters, {len(model.state_dict())} tensors, "
          f"{sum(1 for m in model.modules() if isinstance(m, Module))} flambe modules "
          f"(classes from module '{type(model).__module__}'), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    if num_params < 50_000_000:
        print("FAIL: the benchmark model must have at least 50M parameters")
        report(args.name, float("nan"), f"<= {TARGET_RATIO}x", False, error="model too small")
        return 1

    root = tempfile.mkdtemp(prefix="flambe-bench-save-", dir=args.tmpdir)
    try:
        result = measure(model, root, args.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    del model
    gc.collect()

    m = summarize(result)
    ratio = m["flambe_total"] / m["baseline_total"]
    problems = result["problems"]
    correct = not problems
    passed = correct and ratio <= TARGET_RATIO
    sizes = result["sizes"]
    print(f"torch.save(state_dict) + torch.load : median {m['baseline_total']:.3f} s "
          f"(save {m['baseline_save']:.3f}, load {m['baseline_load']:.3f}; {sizes['baseline'] / 2**20:.0f} MiB)")
    print(f"flambe.save + flambe.load           : median {m['flambe_total']:.3f} s "
          f"(save {m['flambe_save']:.3f}, load {m['flambe_load']:.3f}; {sizes['flambe'] / 2**20:.0f} MiB)")
    if problems:
        print("correctness: FAIL")
        for problem in problems[:20]:
            print(f"  - {problem}")
    else:
        print("correctness: loaded tensors equal the original (torch.equal), module types match")
    verdict = ("PASS" if passed else "FAIL") if not args.info else f"INFO (would {'PASS' if passed else 'FAIL'})"
    print(f"ratio = {ratio:.3f}  target <= {TARGET_RATIO}  -> {verdict}")

    report(args.name, ratio, f"<= {TARGET_RATIO}x", passed, correct=correct, gate=not args.info,
           **{k: round(v, 4) for k, v in m.items()})

    if not args.no_module_variant and args.module_runs > 0:
        print("informational variant (does not affect PASS/FAIL), model classes imported from a module "
              "instead of __main__:")
        info = module_variant(args.module_runs, args.tmpdir, args.blocks)
        if info is not None:
            print("BENCH_RESULT " + json.dumps(info))  # an informational row for run_all's table
    return 0 if passed or args.info else 1


if __name__ == "__main__":
    sys.exit(main())
