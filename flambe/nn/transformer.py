"""Transformer encoder/decoder modules (Vaswani et al., 2017) over batch-first sequences.

They wrap ``torch.nn.TransformerEncoderLayer``/``TransformerDecoderLayer`` (``batch_first=True``) with
Flambé's interface: an input projection when ``input_size != d_model``, and padding masks in flambe's
convention, ``1``/``True`` for real tokens (they are inverted for torch, whose key padding masks are
True for padding). Attention masks (``src_mask``, ``tgt_mask``, ``memory_mask``) follow torch: float
masks are added to the attention scores (``-inf`` blocks), see :func:`generate_square_subsequent_mask`.

Every layer is post-norm (as in the paper), so the stacks add no final layer norm. Flambé's SRU
variants (``TransformerSRU``, ``TransformerSRUEncoder``, ...) are left out: they need the ``sru``
package, which is not available here.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from flambe.nn.module import Module


def generate_square_subsequent_mask(sz: int) -> Tensor:
    """A causal attention mask ``[sz x sz]``: ``-inf`` above the diagonal (future positions), 0 elsewhere."""
    return torch.triu(torch.full((sz, sz), float("-inf")), diagonal=1)


def key_padding_mask(padding_mask: Optional[Tensor], attn_mask: Optional[Tensor] = None) -> Optional[Tensor]:
    """Turn a flambe padding mask (True = real token) into torch's key padding mask (True = ignore).

    When ``attn_mask`` is a float mask the result is float too (``-inf`` at padding), as torch
    wants both masks of one attention call to have the same kind.
    """
    if padding_mask is None:
        return None
    padding = padding_mask == 0
    if attn_mask is not None and attn_mask.is_floating_point():
        return torch.zeros(padding.shape, dtype=attn_mask.dtype, device=padding.device).masked_fill(
            padding, float("-inf"))
    return padding


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward network, each with residual connection and layer norm.

    Parameters
    ----------
    d_model : int
        Width of the inputs and outputs.
    nhead : int
        Number of attention heads (must divide ``d_model``).
    dim_feedforward : int
        Width of the feed-forward network.
    dropout : float
        Dropout probability.

    Attributes
    ----------
    layer : torch.nn.TransformerEncoderLayer
        The torch layer (``batch_first=True``).

    Notes
    -----
    forward(src ``[B x S x d_model]``, src_mask ``[S x S]`` or None, padding_mask ``[B x S]`` or None)
    -> ``[B x S x d_model]``.

    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.d_model = d_model
        self.layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=dim_feedforward,
                                                dropout=dropout, batch_first=True)

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Encode ``src`` ``[B x S x d_model]``."""
        return self.layer(src, src_mask=src_mask, src_key_padding_mask=key_padding_mask(padding_mask, src_mask))


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder memory, and a feed-forward network.

    Parameters
    ----------
    d_model, nhead, dim_feedforward, dropout
        As in :class:`TransformerEncoderLayer`.

    Attributes
    ----------
    layer : torch.nn.TransformerDecoderLayer
        The torch layer (``batch_first=True``).

    Notes
    -----
    forward(tgt ``[B x T x d_model]``, memory ``[B x S x d_model]``, tgt_mask ``[T x T]``, memory_mask
    ``[T x S]``, padding_mask ``[B x T]``, memory_key_padding_mask ``[B x S]``) -> ``[B x T x d_model]``.
    Both padding masks are True for real tokens.

    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.d_model = d_model
        self.layer = nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward=dim_feedforward,
                                                dropout=dropout, batch_first=True)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Decode ``tgt`` ``[B x T x d_model]`` against ``memory`` ``[B x S x d_model]``."""
        return self.layer(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                          tgt_key_padding_mask=key_padding_mask(padding_mask, tgt_mask),
                          memory_key_padding_mask=key_padding_mask(memory_key_padding_mask, memory_mask))


def _xavier_init(module: nn.Module) -> None:
    for parameter in module.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter)


class _TransformerStack(Module, should_register=False):
    """The shared body of :class:`TransformerEncoder` and :class:`TransformerDecoder`.

    An optional input projection to ``d_model`` and ``num_layers`` layers of ``_layer_cls``, with
    Xavier-uniform initialisation of every weight matrix.
    """

    _layer_cls: type

    def __init__(self, input_size: int = 512, d_model: int = 512, nhead: int = 8, num_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.input_size = input_size
        self.d_model = d_model
        self.output_size = d_model
        self.proj = nn.Linear(input_size, d_model) if input_size != d_model else None
        self.layers = nn.ModuleList(self._layer_cls(d_model, nhead, dim_feedforward, dropout)
                                    for _ in range(num_layers))
        _xavier_init(self)

    def _project(self, inputs: Tensor) -> Tensor:
        return self.proj(inputs) if self.proj is not None else inputs


class TransformerEncoder(_TransformerStack):
    """A stack of ``num_layers`` :class:`TransformerEncoderLayer`, after an optional input projection.

    Parameters
    ----------
    input_size : int
        Width of the inputs (E); projected linearly to ``d_model`` when different.
    d_model, nhead, dim_feedforward, dropout
        As in :class:`TransformerEncoderLayer`.
    num_layers : int
        Number of layers.

    Attributes
    ----------
    proj : torch.nn.Linear or None
        The input projection (None when ``input_size == d_model``).
    layers : torch.nn.ModuleList
        The encoder layers.
    output_size : int
        ``d_model``.

    Notes
    -----
    forward(src ``[B x S x E]``, mask ``[S x S]`` or None, padding_mask ``[B x S]`` or None)
    -> ``[B x S x d_model]``. It takes ``padding_mask`` (True = real token), so an ``Embedder`` passes it.
    Weight matrices are initialised with Xavier-uniform.

    """

    _layer_cls = TransformerEncoderLayer

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, padding_mask: Optional[Tensor] = None) -> Tensor:
        """Encode ``src`` ``[B x S x input_size]`` into ``[B x S x d_model]``."""
        out = self._project(src)
        for layer in self.layers:
            out = layer(out, src_mask=mask, padding_mask=padding_mask)
        return out


class TransformerDecoder(_TransformerStack):
    """A stack of ``num_layers`` :class:`TransformerDecoderLayer`, after an optional input projection.

    Parameters and attributes are as in :class:`TransformerEncoder`, with ``input_size`` the width of
    the target inputs and ``layers`` holding :class:`TransformerDecoderLayer`.

    Notes
    -----
    forward(tgt ``[B x T x input_size]``, memory ``[B x S x d_model]``, tgt_mask, memory_mask,
    padding_mask ``[B x T]``, memory_key_padding_mask ``[B x S]``) -> ``[B x T x d_model]``.

    """

    _layer_cls = TransformerDecoderLayer

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None, padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Decode ``tgt`` against ``memory``; return ``[B x T x d_model]``."""
        out = self._project(tgt)
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, padding_mask=padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask)
        return out


class Transformer(Module):
    """An encoder-decoder Transformer: :class:`TransformerEncoder` + :class:`TransformerDecoder`.

    Parameters
    ----------
    input_size : int
        Width of the source and target inputs (projected to ``d_model`` when different).
    d_model, nhead, dim_feedforward, dropout
        As in the layers.
    num_encoder_layers, num_decoder_layers : int
        Depth of each stack.

    Attributes
    ----------
    encoder : TransformerEncoder
    decoder : TransformerDecoder
    output_size : int
        ``d_model``.

    Notes
    -----
    forward(src ``[B x S x E]``, tgt ``[B x T x E]``, src_mask ``[S x S]``, tgt_mask ``[T x T]``,
    memory_mask ``[T x S]``, src_key_padding_mask ``[B x S]``, tgt_key_padding_mask ``[B x T]``,
    memory_key_padding_mask ``[B x S]``) -> ``[B x T x d_model]``. Padding masks are True for real
    tokens; ``memory_key_padding_mask`` defaults to ``src_key_padding_mask`` (the memory has the
    source's positions).

    """

    def __init__(self, input_size: int, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.input_size = input_size
        self.d_model = d_model
        self.output_size = d_model
        self.encoder = TransformerEncoder(input_size, d_model, nhead, num_encoder_layers, dim_feedforward, dropout)
        self.decoder = TransformerDecoder(input_size, d_model, nhead, num_decoder_layers, dim_feedforward, dropout)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Optional[Tensor] = None,
                tgt_mask: Optional[Tensor] = None, memory_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Encode ``src``, decode ``tgt`` against it; return ``[B x T x d_model]``."""
        if src.size(0) != tgt.size(0):
            raise ValueError(f"src and tgt must have the same batch size, got {src.size(0)} and {tgt.size(0)}")
        memory = self.encoder(src, mask=src_mask, padding_mask=src_key_padding_mask)
        if memory_key_padding_mask is None:
            memory_key_padding_mask = src_key_padding_mask
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask)
