"""Benchmark: ``Trainer`` optimizer updates per second versus the plain PyTorch training loop.

Data: a generated text classification set (fixed seed) in a ``TabularDataset``: 6,000 training and 64
validation examples, each ``(1-D LongTensor of 5-50 token ids in [1, 5000), 0-d label in [0, 4))``.
Model: ``TextClassifier(Embedder(Embeddings(5000, 64), TextCNNEncoder(64, num_filters=64,
kernel_sizes=(3, 4, 5))), SoftmaxLayer(192, 4))`` (a small Kim-style CNN, about 370k parameters),
built once with a seed; every run trains a ``deepcopy`` of it with a fresh ``Adam(lr=1e-3)``, so both
sides start from the same weights. ``torch.set_num_threads(1)`` for both (``--threads``): on a small
shared machine, two OpenMP threads competing with other processes for the cores made single updates
10-20x slower at random, which swamped the comparison.

Baseline: the loop a user would write: ``DataLoader(train, batch_size=32, shuffle=True,
collate_fn=pad_collate)`` (``pad_sequence`` for the tokens, ``stack`` for the labels) over the same
examples (a list), ``model.train()``, then ``zero_grad`` / forward / ``NLLLoss`` / ``backward`` /
``Adam.step`` for ``STEPS x ITER_PER_STEP`` updates (crossing epochs as needed).

flambe: ``Trainer(dataset, BaseSampler(batch_size=32), BaseSampler(shuffle=False, batch_size=64), model,
NLLLoss(), Accuracy(), Adam, iter_per_step=ITER_PER_STEP, max_steps=STEPS, device='cpu')``; the timed
region is the ``STEPS`` calls to ``run()``, so it includes the per-batch loss and training-metric
bookkeeping, the validation pass after each step (one batch of 64), the best-model snapshot and the
logging. Both sides make the same number of optimizer updates on batches of the same size.

The runs alternate (baseline, flambe), RUNS of each after one warm-up each; the ratio compares the
median updates/second. Target: flambe >= 0.95 x the baseline. Correctness: without shuffling and
dropout, one Trainer step of CHECK_UPDATES updates leaves the same weights as the baseline loop
making the same updates (``torch.allclose``). The Trainer's own cost, measured separately, is about 60 us
per update (mostly ``Accuracy.aggregate`` on the training batches) plus one ~8 ms validation batch per
step: about 1.5% of this workload, well inside the target; single runs on a busy 2-core machine vary by
10-20%, so a median near the target says more about the machine than about the Trainer.

Run: ``.venv/bin/python tests/benchmarks/bench_trainer.py [--runs N] [--steps N] [--iter-per-step N]
[--threads N]``. Exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import sys
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from benchlib import conclude
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from flambe.dataset import TabularDataset
from flambe.learn import Trainer
from flambe.metric import Accuracy
from flambe.nlp.classification import TextClassifier
from flambe.nn import Embedder, Embeddings, SoftmaxLayer, TextCNNEncoder
from flambe.sampler import BaseSampler

NAME = "trainer"
TARGET_RATIO = 0.95
RUNS = 5
STEPS = 3
ITER_PER_STEP = 150
CHECK_UPDATES = 20
BATCH_SIZE = 32
VAL_BATCH_SIZE = 64
THREADS = 1
VOCAB = 5_000
CLASSES = 4
N_TRAIN = 6_000
N_VAL = 64
LR = 1e-3

Example = Tuple[torch.Tensor, torch.Tensor]


def make_examples(n: int, generator: torch.Generator) -> List[Example]:
    lengths = torch.randint(5, 51, (n,), generator=generator).tolist()
    labels = torch.randint(0, CLASSES, (n,), generator=generator).tolist()
    return [(torch.randint(1, VOCAB, (length,), generator=generator), torch.tensor(label))
            for length, label in zip(lengths, labels)]


def make_dataset(seed: int = 0) -> TabularDataset:
    generator = torch.Generator().manual_seed(seed)
    train = make_examples(N_TRAIN, generator)
    val = make_examples(N_VAL, generator)
    return TabularDataset(train, val)


def make_model(seed: int = 0) -> TextClassifier:
    torch.manual_seed(seed)
    encoder = TextCNNEncoder(64, num_filters=64, kernel_sizes=(3, 4, 5))
    return TextClassifier(Embedder(Embeddings(VOCAB, 64), encoder), SoftmaxLayer(encoder.output_size, CLASSES))


def pad_collate(batch: Sequence[Example]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The baseline collate: pad_sequence for the token column, stack for the labels."""
    tokens, labels = zip(*batch)
    return pad_sequence(tokens, batch_first=True, padding_value=0), torch.stack(labels)


# ---------------------------------------------------------------------- the two sides
class PlainLoop:
    """The plain PyTorch loop, run ``updates`` optimizer updates at a time over one endless batch stream."""

    def __init__(self, model: torch.nn.Module, train: List[Example], shuffle: bool = True) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        self.loss_fn = torch.nn.NLLLoss()
        loader = DataLoader(train, batch_size=BATCH_SIZE, shuffle=shuffle, collate_fn=pad_collate)  # type: ignore[arg-type]
        self.batches = self._endless(loader)

    @staticmethod
    def _endless(loader: DataLoader) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from loader

    def train(self, updates: int) -> None:
        model, optimizer, loss_fn, batches = self.model, self.optimizer, self.loss_fn, self.batches
        model.train()
        for _ in range(updates):
            tokens, labels = next(batches)
            optimizer.zero_grad()
            loss = loss_fn(model(tokens), labels)
            loss.backward()
            optimizer.step()


def make_trainer(model: torch.nn.Module, dataset: TabularDataset, steps: int, iter_per_step: int,
                 shuffle: bool = True) -> Trainer:
    return Trainer(dataset,
                   BaseSampler(batch_size=BATCH_SIZE, shuffle=shuffle),
                   BaseSampler(batch_size=VAL_BATCH_SIZE, shuffle=False),
                   model, torch.nn.NLLLoss(), Accuracy(), torch.optim.Adam(model.parameters(), lr=LR),
                   device="cpu", max_steps=steps, iter_per_step=iter_per_step)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes (after a garbage collection)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_run(model: torch.nn.Module, train: List[Example], updates: int) -> float:
    """Seconds for ``updates`` updates of the plain loop, training a copy of ``model``."""
    loop = PlainLoop(copy.deepcopy(model), train)
    return timed(lambda: loop.train(updates))


def trainer_run(model: torch.nn.Module, dataset: TabularDataset, steps: int, iter_per_step: int) -> float:
    """Seconds for the ``steps`` calls to ``Trainer.run()`` (``steps x iter_per_step`` updates), training a
    copy of ``model``."""
    trainer = make_trainer(copy.deepcopy(model), dataset, steps, iter_per_step)

    def run_all_steps() -> None:
        while trainer.run():
            pass

    elapsed = timed(run_all_steps)
    assert trainer._step == steps and trainer._iteration == steps * iter_per_step, (trainer._step, trainer._iteration)
    return elapsed


def same_training(model: torch.nn.Module, dataset: TabularDataset, train: List[Example]) -> Optional[str]:
    """None when one unshuffled Trainer step leaves the weights the unshuffled plain loop does."""
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    make_trainer(ours, dataset, 1, CHECK_UPDATES, shuffle=False).run()
    PlainLoop(theirs, train, shuffle=False).train(CHECK_UPDATES)
    mine, other = ours.state_dict(), theirs.state_dict()
    for key, value in other.items():
        if not torch.allclose(mine[key], value, rtol=1e-5, atol=1e-7):
            return f"after {CHECK_UPDATES} updates the Trainer's {key} differs from the plain loop's"
    return None


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of each side (default {RUNS})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"Trainer steps per run (default {STEPS})")
    parser.add_argument("--iter-per-step", type=int, default=ITER_PER_STEP,
                        help=f"optimizer updates per step (default {ITER_PER_STEP})")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS})")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dataset = make_dataset()
    train: List[Example] = list(dataset.train)  # the same examples, as the list a plain-torch user has
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(train)} train / {len(dataset.val)} val examples of (LongTensor[5..50], label), TextCNN "
          f"classifier ({n_params} parameters), batch size {BATCH_SIZE}, {args.steps} steps x "
          f"{args.iter_per_step} updates, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {load_average()}")

    problem = same_training(model, dataset, train)
    if problem:
        print(f"WRONG: {problem}")

    updates = args.steps * args.iter_per_step
    plain_run(model, train, updates)  # warm-up
    trainer_run(model, dataset, args.steps, args.iter_per_step)
    base_rates: List[float] = []
    ours_rates: List[float] = []
    for i in range(args.runs):
        base_rates.append(updates / plain_run(model, train, updates))
        ours_rates.append(updates / trainer_run(model, dataset, args.steps, args.iter_per_step))
        print(f"  run {i + 1}: plain loop {base_rates[-1]:7.1f} updates/s   "
              f"Trainer {ours_rates[-1]:7.1f} updates/s   ({ours_rates[-1] / base_rates[-1]:.3f}x)")

    return conclude(NAME, base_rates, ours_rates, TARGET_RATIO, problem, "plain loop", "Trainer", "updates/s",
                    keys=("baseline_ups", "flambe_ups"), digits=1, ratio_digits=3,
                    note=f"; load average {load_average()}")


if __name__ == "__main__":
    sys.exit(main())
