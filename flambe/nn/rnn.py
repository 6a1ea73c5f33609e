"""Recurrent encoders over padded, batch-first sequences: RNNEncoder and PooledRNNEncoder.

Padding is handled with ``torch.nn.utils.rnn.pack_padded_sequence``: the recurrence never reads a
padding position, so every sequence of a padded batch is encoded exactly as it would be alone.

The SRU cell (``rnn_type='sru'``) of Flambé is left out: it needs the ``sru`` package, which is not
available here. Use ``'lstm'``, ``'gru'`` or ``'rnn'``.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from flambe.nn.module import Module
from flambe.nn.pooling import POOL_FUNCTIONS, gather_positions, last_index

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
POOLED_RNN_POOLINGS = ("first", "last", "sum", "mean", "max")


def _rnn_class(rnn_type: str) -> type:
    key = str(rnn_type).lower()
    if key == "sru":
        raise ValueError("rnn_type 'sru' is not available: the SRU cell needs the 'sru' package, which is not "
                         "installed here. Use rnn_type 'lstm', 'gru' or 'rnn' instead.")
    if key not in RNN_TYPES:
        raise ValueError(f"Unknown rnn_type '{rnn_type}': choose one of 'lstm', 'gru' or 'rnn' "
                         "('sru' is not available here)")
    return RNN_TYPES[key]


class RNNEncoder(Module):
    """A multi-layer (optionally bidirectional) LSTM, GRU or Elman RNN over ``[B x S x E]``.

    Parameters
    ----------
    input_size : int
        Size of the input vectors (E).
    hidden_size : int
        Size of the hidden state per direction (H).
    n_layers : int
        Number of stacked layers.
    rnn_type : str
        ``'lstm'``, ``'gru'`` or ``'rnn'`` (tanh). ``'sru'`` raises a ValueError (no ``sru`` package).
    dropout : float
        Dropout between stacked layers (torch's ``dropout``; ignored by torch with one layer).
    bidirectional : bool
        Run a second, backward direction; outputs are then ``2 * hidden_size`` wide.
    layer_norm, highway_bias, rescale
        SRU-only options, kept for Flambé compatibility. As the SRU is not available they must keep
        their defaults (False, 0, True); any other value raises a ValueError rather than being ignored.
    enforce_sorted : bool
        Passed to ``pack_padded_sequence``: True requires batches sorted by decreasing length.

    Attributes
    ----------
    rnn : torch.nn.Module
        The torch ``LSTM``/``GRU``/``RNN`` (``batch_first=True``).
    input_size, hidden_size, n_layers, bidirectional, rnn_type
        The configuration.
    output_size : int
        Width of the outputs: ``hidden_size * (2 if bidirectional else 1)``.

    Notes
    -----
    forward(data ``[B x S x E]``, state=None, padding_mask ``[B x S]`` or None) -> (out ``[B x S x output_size]``,
    state). The state is ``(h, c)`` for an LSTM and ``h`` otherwise, each ``[n_layers * dirs x B x H]``.
    The padding mask (1/True = real token) must mark a prefix of each row (right padding); padding
    positions of ``out`` are zeros. A row without any real token is encoded as if its first position were real.

    """

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1, rnn_type: str = "lstm",
                 dropout: float = 0, bidirectional: bool = False, layer_norm: bool = False,
                 highway_bias: float = 0, rescale: bool = True, enforce_sorted: bool = False) -> None:
        super().__init__()
        rnn_class = _rnn_class(rnn_type)
        sru_only = {"layer_norm": (layer_norm, False), "highway_bias": (highway_bias, 0), "rescale": (rescale, True)}
        changed = [name for name, (value, default) in sru_only.items() if value != default]
        if changed:
            raise ValueError(f"{', '.join(changed)} only apply to the SRU, which is not available here; "
                             f"remove them for rnn_type '{rnn_type}'")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.rnn_type = str(rnn_type).lower()
        self.bidirectional = bidirectional
        self.enforce_sorted = enforce_sorted
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.rnn = rnn_class(input_size, hidden_size, num_layers=n_layers, dropout=dropout,
                             bidirectional=bidirectional, batch_first=True)

    def forward(self, data: Tensor, state: Optional[Any] = None,
                padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Any]:
        """Encode ``data`` ``[B x S x E]``; return ``(out [B x S x output_size], state)``."""
        if data.dim() != 3:
            raise ValueError(f"RNNEncoder expects data of shape [B x S x E], got {list(data.shape)}")
        if padding_mask is None:
            return self.rnn(data, state)
        if padding_mask.shape != data.shape[:2]:
            raise ValueError(f"padding_mask must have shape {list(data.shape[:2])} (B x S), "
                             f"got {list(padding_mask.shape)}")
        seq_len = data.size(1)
        lengths = (padding_mask != 0).sum(dim=1).clamp(min=1).cpu()
        if bool((lengths == seq_len).all()):
            return self.rnn(data, state)
        packed = pack_padded_sequence(data, lengths, batch_first=True, enforce_sorted=self.enforce_sorted)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=seq_len)
        return out, state


class PooledRNNEncoder(RNNEncoder):
    """An :class:`RNNEncoder` whose outputs are pooled into one vector per sequence; the state is dropped.

    Parameters
    ----------
    input_size, hidden_size, n_layers, rnn_type, dropout, bidirectional, layer_norm, highway_bias, rescale
        As in :class:`RNNEncoder`.
    pooling : str
        ``'first'``, ``'last'``, ``'sum'``, ``'mean'`` or ``'max'``, all over real tokens only.
        ``'last'`` takes the output at the last real token; when bidirectional, it concatenates the
        forward direction at the last real token with the backward direction at the first token
        (each direction's final step, so both have read the whole sequence). ``'first'`` takes the
        outputs at the first real token (position 0 with right padding).

    Notes
    -----
    forward(data ``[B x S x E]``, state=None, padding_mask ``[B x S]`` or None) -> ``[B x output_size]``.
    Attributes are those of :class:`RNNEncoder` (``rnn``, ``hidden_size``, ``output_size``, ...).

    """

    def __init__(self, input_size: int, hidden_size: int, n_layers: int = 1, rnn_type: str = "lstm",
                 dropout: float = 0, bidirectional: bool = False, layer_norm: bool = False,
                 highway_bias: float = 0, rescale: bool = True, pooling: str = "last") -> None:
        super().__init__(input_size, hidden_size, n_layers=n_layers, rnn_type=rnn_type, dropout=dropout,
                         bidirectional=bidirectional, layer_norm=layer_norm, highway_bias=highway_bias,
                         rescale=rescale, enforce_sorted=False)
        key = str(pooling).lower()
        if key not in POOLED_RNN_POOLINGS:
            raise ValueError(f"Unknown pooling '{pooling}': choose one of {', '.join(POOLED_RNN_POOLINGS)}")
        self.pooling = key

    def forward(self, data: Tensor, state: Optional[Any] = None,  # type: ignore[override]
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Encode and pool ``data`` ``[B x S x E]`` into ``[B x output_size]``."""
        out, _ = super().forward(data, state=state, padding_mask=padding_mask)
        if self.pooling == "last" and self.bidirectional:
            if padding_mask is None:
                forward_last = out[:, -1, : self.hidden_size]
            else:
                forward_last = gather_positions(out, last_index(padding_mask != 0))[:, : self.hidden_size]
            return torch.cat([forward_last, out[:, 0, self.hidden_size:]], dim=-1)
        return POOL_FUNCTIONS[self.pooling](out, padding_mask)
