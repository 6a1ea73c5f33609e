"""Benchmark: Fireworks pipes: in-memory shuffled batching speed, and streaming through a small cache.

(a) ``pipes_shuffle_batch``: 200,000 rows (a LongTensor column [N x 20] and a label column) in one Message,
through ``BatchingPipe(ShufflerPipe(message, seed), batch_size=64)``, versus the per-item baseline
``DataLoader(rows, batch_size=64, shuffle=True)`` over a map-style dataset whose ``__getitem__`` returns one
row as ``{'x': x[i], 'label': y[i]}`` (default collate). One epoch each, every batch's tensors touched, no
workers; RUNS alternating runs of each after one warm-up each; the ratio compares the medians of batches/s.
Target >= 3.0x. Correctness: unshuffled batches equal the DataLoader's; a shuffled epoch holds every row once.

(b) ``pipes_cache_memory`` and ``pipes_cache_reads``: an indexable source of 400,000 rows x (64 float32 + an
int64 id) = 105.6 MB that builds each 4,096-row block when asked (it holds nothing), a
``CachingPipe(cache_bytes=dataset/8, prefetch=4096)`` (LRU) on it and a block-aware ``ShufflerPipe(seed=0)``
registered as its consumer, one full epoch, every block checked (values, each row exactly once). A thread
samples VmRSS (/proc/self/status) every millisecond; the growth is the peak minus the value just before the
epoch, which starts by computing the shuffle order (3 MB kept, ~12 MB at its peak; reported too).
Gates: growth <= cache budget + prefetch rows + ALLOWANCE_MB (20 MB for the interpreter, the allocator and the
index arrays: the shuffle order and the cache's row map, 12 bytes per dataset row), and source block reads per
block <= 1.05 on average. This part runs first, in a fresh process, so freed memory from (a) cannot hide
growth.

Run: ``.venv/bin/python tests/benchmarks/bench_pipes.py [--runs N] [--rows N]``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from benchlib import conclude, report
from torch.utils.data import DataLoader, Dataset

from flambe.pipeline.caching import CachingPipe
from flambe.pipeline.message import Message
from flambe.pipeline.pipe import Pipe, gather_rows, normalize_index
from flambe.pipeline.pipes import BatchingPipe, ShufflerPipe

RUNS = 7
BATCH_SIZE = 64
TARGET_RATIO = 3.0
STREAM_ROWS = 400_000
STREAM_BLOCK = 4096
STREAM_COLS = 64
ALLOWANCE_MB = 20.0
TARGET_READS = 1.05


# ------------------------------------------------------------------------------------ (b) streaming
def rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakSampler:
    """Samples VmRSS every ``interval`` seconds in a thread and keeps the peak."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval, self.peak, self._stop = interval, rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def block_values(ids: torch.Tensor) -> torch.Tensor:
    """The float32 columns of rows ``ids``: row i is ``i + 0.5 * j`` in column j (exact in float32)."""
    return ids[:, None].to(torch.float32) + torch.arange(STREAM_COLS, dtype=torch.float32) * 0.5


class GeneratedSource(Pipe):
    """An indexable source of ``n`` rows that builds each block when it is read and counts block reads."""

    def __init__(self, n: int, block: int) -> None:
        super().__init__(None)
        self.n, self.block = n, block
        self.offsets = np.append(np.arange(0, n, block), n).astype(np.int64)
        self.reads = np.zeros(len(self.offsets) - 1, dtype=np.int64)

    @property
    def indexable(self) -> bool:
        return True

    @property
    def block_size(self) -> int:
        return self.block

    def block_offsets(self) -> np.ndarray:
        return self.offsets

    def __len__(self) -> int:
        return self.n

    def _read(self, b: int) -> Message:
        self.reads[b] += 1
        ids = torch.arange(int(self.offsets[b]), int(self.offsets[b + 1]))
        return Message({"id": ids, "x": block_values(ids)})

    def __getitem__(self, index: Any) -> Message:
        return gather_rows(self._read, self.offsets, normalize_index(index, self.n))


def stream_epoch(n: int, block: int) -> Dict[str, Any]:
    """One epoch of a block-shuffled stream through a cache of 1/8 of the data; memory, reads, correctness."""
    row_bytes = STREAM_COLS * 4 + 8
    budget = n * row_bytes // 8
    prefetch = block
    source = GeneratedSource(n, block)
    cache = CachingPipe(source, cache_bytes=budget, prefetch=prefetch)
    shuffler = cache.register_consumer(ShufflerPipe(cache, seed=0))
    seen = np.full(n, 0, dtype=np.int8)  # written now, so its pages are resident before the baseline
    warm = GeneratedSource(20_000, block)  # warm up the same code paths on a small source
    warm_cache = CachingPipe(warm, cache_bytes=20_000 * row_bytes // 8, prefetch=prefetch)
    for _ in warm_cache.register_consumer(ShufflerPipe(warm_cache, seed=1)):
        pass
    del warm, warm_cache
    gc.collect()
    errors = 0
    before = rss_bytes()
    start = time.perf_counter()
    with PeakSampler() as sampler:
        shuffler.upcoming_indices(1)  # the epoch's shuffle order (8 bytes a row, more while it is computed)
        order_peak = max(sampler.peak, rss_bytes())
        for part in shuffler:
            ids = part["id"]
            seen[ids.numpy()] += 1
            if not torch.equal(part["x"][:, 0], ids.to(torch.float32)) or \
                    not torch.equal(part["x"][:, -1] - part["x"][:, 0], torch.full((len(ids),), 31.5)):
                errors += 1
    elapsed = time.perf_counter() - start
    errors += int((seen != 1).sum())
    growth = sampler.peak - before
    allowed = budget + prefetch * row_bytes + ALLOWANCE_MB * 2**20
    return {"rows": n, "blocks": len(source.reads), "dataset_mb": n * row_bytes / 2**20,
            "budget_mb": budget / 2**20, "prefetch_mb": prefetch * row_bytes / 2**20, "growth_mb": growth / 2**20,
            "order_mb": (order_peak - before) / 2**20,
            "allowed_mb": allowed / 2**20, "reads_per_block": float(source.reads.mean()),
            "max_reads": int(source.reads.max()), "seconds": elapsed, "errors": errors, "hits": cache.hits,
            "misses": cache.misses, "prefetched": cache.prefetched, "requests": cache.source_requests,
            "cached_rows": len(cache.cache), "cache_mb": cache.cache.allocated_bytes / 2**20}


# ------------------------------------------------------------------------------------ (a) batching
class RowDataset(Dataset):
    """The baseline's dataset of rows: one ``{'x': row, 'label': label}`` per ``__getitem__``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return {"x": self.x[i], "label": self.y[i]}


def consume(batches: Iterable[Any]) -> Tuple[int, float]:
    """(number of batches, seconds) to draw every batch and touch its tensors."""
    gc.collect()
    start = time.perf_counter()
    n = checksum = 0
    for batch in batches:
        checksum += batch["x"].shape[0] + batch["label"].shape[0]
        n += 1
    elapsed = time.perf_counter() - start
    assert checksum > 0
    return n, elapsed


def check_batching(message: Message, dataset: RowDataset) -> Optional[str]:
    """None when unshuffled batches equal the DataLoader's and a shuffled epoch has every row once."""
    ours = list(BatchingPipe(message, batch_size=BATCH_SIZE))
    theirs = list(DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=False))
    if len(ours) != len(theirs):
        return f"{len(ours)} batches, the DataLoader made {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if not (torch.equal(a["x"], b["x"]) and torch.equal(a["label"], b["label"])):
            return f"unshuffled batch {i} differs"
    rows = torch.cat([b["x"] for b in BatchingPipe(ShufflerPipe(message, seed=5), batch_size=BATCH_SIZE)])
    if not torch.equal(torch.sort(rows[:, 0] * 2**20 + rows[:, 1]).values,
                       torch.sort(message["x"][:, 0] * 2**20 + message["x"][:, 1]).values):
        return "a shuffled epoch does not hold every row once"
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each side (default {RUNS})")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the batching benchmark")
    parser.add_argument("--stream-rows", type=int, default=STREAM_ROWS, help="rows of the streaming benchmark")
    args = parser.parse_args(argv)
    ok = True

    s = stream_epoch(args.stream_rows, STREAM_BLOCK)
    print(f"(b) {s['rows']} rows x ({STREAM_COLS} float32 + int64 id) = {s['dataset_mb']:.1f} MB in {s['blocks']} "
          f"generated blocks; cache budget {s['budget_mb']:.1f} MB (LRU, {s['cached_rows']} rows held at the end, "
          f"{s['cache_mb']:.1f} MB of buffers), prefetch {s['prefetch_mb']:.1f} MB; one block-shuffled epoch in "
          f"{s['seconds']:.2f} s")
    print(f"    RSS growth {s['growth_mb']:.1f} MB (allowed {s['allowed_mb']:.1f} MB = budget + prefetch + "
          f"{ALLOWANCE_MB:.0f} MB; computing the shuffle order peaked at {s['order_mb']:.1f} MB)")
    print(f"    block reads {s['reads_per_block']:.3f} per block (max {s['max_reads']}); "
          f"hits {s['hits']}, misses {s['misses']}, prefetched {s['prefetched']}, {s['requests']} source requests; "
          f"errors {s['errors']}")
    mem_ok = s["growth_mb"] <= s["allowed_mb"] and s["errors"] == 0
    reads_ok = s["reads_per_block"] <= TARGET_READS and s["errors"] == 0
    report("pipes_cache_memory", s["growth_mb"] / s["allowed_mb"], "<= 1.0 (growth / allowed)", mem_ok,
           growth_mb=round(s["growth_mb"], 2), order_mb=round(s["order_mb"], 2),
           allowed_mb=round(s["allowed_mb"], 2),
           budget_mb=round(s["budget_mb"], 2), correct=s["errors"] == 0)
    report("pipes_cache_reads", s["reads_per_block"], f"<= {TARGET_READS} reads per block", reads_ok,
           max_reads=s["max_reads"], blocks=s["blocks"], correct=s["errors"] == 0)
    ok = ok and mem_ok and reads_ok

    torch.manual_seed(0)
    x = torch.randint(0, 30_000, (args.rows, 20))
    y = torch.randint(0, 5, (args.rows,))
    message = Message({"x": x, "label": y})
    dataset = RowDataset(x, y)
    print(f"(a) {args.rows} rows (LongTensor [N x 20] + label), batch size {BATCH_SIZE}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    problem = check_batching(message, dataset)
    if problem:
        print(f"WRONG: {problem}")

    def baseline() -> Tuple[int, float]:
        return consume(DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True))

    def ours(epoch: int) -> Tuple[int, float]:
        return consume(BatchingPipe(ShufflerPipe(message, seed=epoch), batch_size=BATCH_SIZE))

    baseline()
    ours(0)
    base_rates: List[float] = []
    our_rates: List[float] = []
    for i in range(args.runs):
        n_base, t_base = baseline()
        n_ours, t_ours = ours(i + 1)
        if n_base != n_ours:
            problem = problem or f"{n_ours} batches per epoch, the DataLoader made {n_base}"
        base_rates.append(n_base / t_base)
        our_rates.append(n_ours / t_ours)
        print(f"  run {i + 1}: DataLoader {base_rates[-1]:8.0f} batches/s   pipes {our_rates[-1]:8.0f} batches/s")
    passed = conclude("pipes_shuffle_batch", base_rates, our_rates, TARGET_RATIO, problem, "DataLoader",
                      "ShufflerPipe+BatchingPipe", "batches/s", keys=("baseline_bps", "flambe_bps")) == 0
    ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
