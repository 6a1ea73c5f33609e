"""Write configs/data/sqlite_example.sqlite, the table configs/sqlite_pipeline.yaml streams from.

Tables train (20,000 rows), val (2,000) and test (2,000): a ``features`` tensor column (8 floats per row)
and a binary ``label``, drawn from two overlapping Gaussian classes with a fixed seed. Run
``python configs/data/make_sqlite_example.py`` (with flambe installed) before the config.
"""

from __future__ import annotations

import os

import torch

from flambe.pipeline import Message, TablePipe, create_table

SIZES = {"train": 20_000, "val": 2_000, "test": 2_000}
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sqlite_example.sqlite")


def main() -> None:
    if os.path.exists(PATH):
        os.unlink(PATH)
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(8, generator=generator)
    for split, n in SIZES.items():
        label = torch.randint(0, 2, (n,), generator=generator)
        features = torch.randn(n, 8, generator=generator) + (label[:, None] * 2 - 1) * 0.6 * direction
        create_table(split, {"features": "tensor", "label": "int"}, engine=PATH)
        with TablePipe(split, PATH) as table:
            table.insert(Message({"features": features, "label": label}))
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
