"""Benchmark: ``BaseSampler`` batches per second versus ``torch.utils.data.DataLoader`` with a padding collate.

Data: 20,000 examples, each ``(1-D LongTensor of 5-60 token ids, 0-d label)``, built with a fixed seed.
Both sides make one shuffled epoch of batches of 64 in this process (no workers): the baseline is
``DataLoader(data, batch_size=64, shuffle=True, collate_fn=pad_collate)`` where ``pad_collate`` pads the
token column with ``torch.nn.utils.rnn.pad_sequence(batch_first=True)`` and stacks the labels; flambe's
side is ``BaseSampler(batch_size=64, shuffle=True).sample(data)``. Every batch is consumed (its
tensors are touched) on both sides. The runs alternate, RUNS of each after one warm-up each; the
ratio compares the medians.

Target: median batches/second of BaseSampler >= 1.0 x the DataLoader's. Correctness: without shuffling,
BaseSampler's batches equal the DataLoader's exactly (same padding, same order).

Run: ``.venv/bin/python tests/benchmarks/bench_sampler.py [--runs N] [--examples N]``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from benchlib import conclude
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from flambe.sampler import BaseSampler

NAME = "sampler"
TARGET_RATIO = 1.0
RUNS = 9
BATCH_SIZE = 64

Example = Tuple[torch.Tensor, torch.Tensor]


def make_data(n: int, seed: int = 0) -> List[Example]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 61, (n,), generator=generator).tolist()
    labels = torch.randint(0, 5, (n,), generator=generator).tolist()
    return [(torch.randint(1, 30_000, (length,), generator=generator), torch.tensor(label))
            for length, label in zip(lengths, labels)]


def pad_collate(batch: Sequence[Example]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The baseline collate: pad_sequence for the token column, stack for the labels."""
    tokens, labels = zip(*batch)
    return pad_sequence(tokens, batch_first=True, padding_value=0), torch.stack(labels)


def consume(batches: Iterable[Tuple[torch.Tensor, ...]]) -> Tuple[int, float]:
    """(number of batches, seconds) to draw every batch and touch its tensors."""
    gc.collect()
    start = time.perf_counter()
    n = 0
    checksum = 0
    for batch in batches:
        checksum += batch[0].shape[1] + batch[1].shape[0]
        n += 1
    elapsed = time.perf_counter() - start
    assert checksum > 0
    return n, elapsed


def run_baseline(data: List[Example]) -> Tuple[int, float]:
    return consume(DataLoader(data, batch_size=BATCH_SIZE, shuffle=True, collate_fn=pad_collate))  # type: ignore[arg-type]


def run_flambe(data: List[Example], sampler: BaseSampler) -> Tuple[int, float]:
    return consume(sampler.sample(data))


def same_batches(data: List[Example]) -> Optional[str]:
    """None when unshuffled BaseSampler batches equal the DataLoader's, else what differs."""
    loader = DataLoader(data, batch_size=BATCH_SIZE, shuffle=False, collate_fn=pad_collate)  # type: ignore[arg-type]
    ours = list(BaseSampler(batch_size=BATCH_SIZE, shuffle=False).sample(data))
    theirs = list(loader)
    if len(ours) != len(theirs):
        return f"{len(ours)} batches, the DataLoader made {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if len(a) != len(b) or any(x.dtype != y.dtype or not torch.equal(x, y) for x, y in zip(a, b)):
            return f"batch {i} differs"
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each side (default {RUNS})")
    parser.add_argument("--examples", type=int, default=20_000, help="number of examples (default 20000)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    data = make_data(args.examples)
    sampler = BaseSampler(batch_size=BATCH_SIZE, shuffle=True, seed=0)
    print(f"{len(data)} examples of (LongTensor[5..60], label), batch size {BATCH_SIZE}, "
          f"{sampler.length(data)} batches per epoch, torch {torch.__version__}, {torch.get_num_threads()} threads")

    problem = same_batches(data)
    if problem:
        print(f"WRONG: {problem}")

    run_baseline(data)
    run_flambe(data, sampler)
    base_rates: List[float] = []
    ours_rates: List[float] = []
    for i in range(args.runs):
        n_base, t_base = run_baseline(data)
        n_ours, t_ours = run_flambe(data, sampler)
        if n_base != n_ours:
            problem = problem or f"{n_ours} batches per epoch, the DataLoader made {n_base}"
        base_rates.append(n_base / t_base)
        ours_rates.append(n_ours / t_ours)
        print(f"  run {i + 1}: DataLoader {base_rates[-1]:8.0f} batches/s   "
              f"BaseSampler {ours_rates[-1]:8.0f} batches/s")

    return conclude(NAME, base_rates, ours_rates, TARGET_RATIO, problem, "DataLoader", "BaseSampler", "batches/s",
                    keys=("baseline_bps", "flambe_bps"))


if __name__ == "__main__":
    sys.exit(main())
