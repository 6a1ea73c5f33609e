"""LMField: a TextField producing a language model's input and its next-token target."""

from __future__ import annotations

from typing import Any, Tuple

import torch

from flambe.field import TextField


class LMField(TextField):
    """A TextField for language modeling: each example gives ``(input ids, target ids)``.

    The text is numericalized as by :class:`TextField`, with an end-of-sentence token appended
    (``eos_token`` defaults to ``'<eos>'`` here), then split into the input (all ids but the last) and the
    target (all ids but the first), so ``target[i]`` is the token following ``input[i]``.

    Parameters
    ----------
    **kwargs : Any
        Any :class:`TextField` argument. ``eos_token`` defaults to ``'<eos>'``; passing ``None`` disables it.

    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("eos_token", "<eos>")
        super().__init__(**kwargs)

    def process(self, example: str) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """Numericalize ``example`` and return ``(ids[:-1], ids[1:])``.

        Parameters
        ----------
        example : str
            The example, as one string.

        Returns
        -------
        Tuple[torch.Tensor, torch.Tensor]
            The input and target ids, both 1-D LongTensors of the same length.

        """
        ids = super().process(example)
        return ids[:-1], ids[1:]
