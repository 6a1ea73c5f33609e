"""Unit tests for flambe.nn encoders: Embeddings, Embedder, RNNEncoder, PooledRNNEncoder, TextCNNEncoder,
their padding-awareness, YAML building and save/load round trips."""

from __future__ import annotations

import math
from typing import List

import pytest
import torch
from torch import nn

from flambe.compile import yaml
from flambe.compile.serialization import load, save
from flambe.nn import (
    AvgPooling,
    Embedder,
    Embeddings,
    LastPooling,
    Module,
    PooledRNNEncoder,
    RNNEncoder,
    TextCNNEncoder,
)


class NnEncTextClassifier(Module):
    """A TextClassifier-like stack for the YAML test."""

    def __init__(self, embedder: Module, output_layer: Module) -> None:
        super().__init__()
        self.embedder = embedder
        self.output_layer = output_layer

    def forward(self, data, target=None):
        pred = self.output_layer(self.embedder(data))
        return pred if target is None else (pred, target)


class NnEncMaskRecorder(Module):
    """An encoder that records the mask it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = None

    def forward(self, data, padding_mask=None):
        self.seen = padding_mask
        return data, "state"


def _padded(seqs: List[torch.Tensor], pad_value=0.0) -> tuple:
    """Right-pad sequences ``[n_i x E]`` (or ids ``[n_i]``) into a batch, with its mask."""
    longest = max(len(s) for s in seqs)
    batch = torch.full((len(seqs), longest) + tuple(seqs[0].shape[1:]), pad_value, dtype=seqs[0].dtype)
    mask = torch.zeros(len(seqs), longest, dtype=torch.bool)
    for i, seq in enumerate(seqs):
        batch[i, : len(seq)] = seq
        mask[i, : len(seq)] = True
    return batch, mask


def _random_seqs(lengths, dim=4, seed=0):
    torch.manual_seed(seed)
    return [torch.randn(n, dim) for n in lengths]


# ---------------------------------------------------------------------- Embeddings
def test_embeddings_shape_and_padding_row():
    emb = Embeddings(10, 4)
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    out = emb(ids)
    assert out.shape == (2, 3, 4)
    assert emb.num_embeddings == 10 and emb.embedding_dim == 4
    assert isinstance(emb.token_embedding, nn.Embedding)
    assert torch.equal(out[1, 1], torch.zeros(4))  # padding_idx 0 starts at zeros
    assert torch.equal(out[0, 0], emb.token_embedding.weight[1])


def test_sinusoidal_positions_hand_computed():
    emb = Embeddings.from_pretrained(torch.zeros(5, 4), positional_encoding=True, positional_max_length=10)
    out = emb(torch.tensor([[1, 2, 3]]))[0]  # zero tokens: the output is the positional encoding
    assert torch.allclose(out[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    # dim 4: frequencies 1 and 1/100 (10000^(-2/4))
    assert torch.allclose(out[1], torch.tensor([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)]))
    assert torch.allclose(out[2], torch.tensor([math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]))
    assert not any(name.startswith("positional") for name in emb.state_dict())  # the table is not saved
    with pytest.raises(ValueError, match="positional_max_length"):
        emb(torch.ones(1, 11, dtype=torch.long))


def test_sinusoidal_positions_odd_dimension():
    emb = Embeddings.from_pretrained(torch.zeros(3, 3), positional_encoding=True, positional_max_length=4)
    out = emb(torch.tensor([[1, 1]]))[0]
    rate = 10000 ** (-2 / 3)
    assert torch.allclose(out[1], torch.tensor([math.sin(1), math.cos(1), math.sin(rate)]))


def test_learned_positions():
    emb = Embeddings(6, 3, positional_encoding=True, positional_learned=True, positional_max_length=7)
    assert emb.positional_embedding.weight.shape == (7, 3)
    ids = torch.tensor([[1, 2]])
    expected = emb.token_embedding.weight[[1, 2]] + emb.positional_embedding.weight[:2]
    assert torch.allclose(emb(ids)[0], expected)
    emb(ids).sum().backward()
    assert emb.positional_embedding.weight.grad is not None


def test_from_pretrained_freeze_and_values():
    weights = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    frozen = Embeddings.from_pretrained(weights)
    assert torch.equal(frozen.token_embedding.weight, weights)  # copied as is, padding row included
    assert not frozen.token_embedding.weight.requires_grad and frozen.frozen
    assert list(frozen.trainable_params) == []
    trainable = Embeddings.from_pretrained(weights.tolist(), freeze=False)
    assert trainable.token_embedding.weight.requires_grad
    trainable(torch.tensor([[1, 2]])).sum().backward()
    assert trainable.token_embedding.weight.grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="2-D"):
        Embeddings.from_pretrained(torch.zeros(3))


def test_from_pretrained_positional_embeddings():
    positions = torch.randn(6, 3)
    emb = Embeddings.from_pretrained(torch.zeros(4, 3), positional_embeddings=positions, positional_freeze=False)
    assert emb.positional_encoding and emb.positional_max_length == 6
    assert torch.equal(emb.positional_embedding.weight, positions)
    assert emb.positional_embedding.weight.requires_grad and not emb.positional_frozen
    assert torch.allclose(emb(torch.tensor([[1, 2, 3]]))[0], positions[:3])
    frozen = Embeddings.from_pretrained(torch.zeros(4, 3), positional_embeddings=positions)
    assert not frozen.positional_embedding.weight.requires_grad
    with pytest.raises(ValueError, match="positional_embeddings"):
        Embeddings.from_pretrained(torch.zeros(4, 3), positional_embeddings=torch.zeros(6, 2))


def test_from_pretrained_from_yaml():
    schema = yaml.load("!Embeddings.from_pretrained {embeddings: [[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]}")
    emb = schema()
    assert torch.equal(emb.token_embedding.weight, torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]))
    assert emb.frozen


def test_freezing_survives_save_and_load(tmp_path):
    emb = Embeddings.from_pretrained(torch.randn(5, 3), positional_embeddings=torch.randn(4, 3),
                                     positional_freeze=False)
    save(emb, str(tmp_path / "emb"))
    loaded = load(str(tmp_path / "emb"))
    assert torch.equal(loaded.token_embedding.weight, emb.token_embedding.weight)
    assert torch.equal(loaded.positional_embedding.weight, emb.positional_embedding.weight)
    assert loaded.frozen and not loaded.token_embedding.weight.requires_grad
    assert not loaded.positional_frozen and loaded.positional_embedding.weight.requires_grad
    trainable = Embeddings.from_pretrained(torch.randn(5, 3), freeze=False)
    save(trainable, str(tmp_path / "trainable"))
    assert load(str(tmp_path / "trainable")).token_embedding.weight.requires_grad


# ---------------------------------------------------------------------- RNNEncoder
@pytest.mark.parametrize("rnn_type, bidirectional", [("lstm", False), ("gru", True), ("rnn", False)])
def test_rnn_encoder_shapes(rnn_type, bidirectional):
    enc = RNNEncoder(4, 5, n_layers=2, rnn_type=rnn_type, bidirectional=bidirectional)
    dirs = 2 if bidirectional else 1
    assert enc.output_size == 5 * dirs and enc.rnn.hidden_size == 5
    assert isinstance(enc.rnn, {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[rnn_type])
    out, state = enc(torch.randn(3, 7, 4))
    assert out.shape == (3, 7, 5 * dirs)
    hidden = state[0] if rnn_type == "lstm" else state
    assert hidden.shape == (2 * dirs, 3, 5)


def test_rnn_encoder_sru_and_sru_only_options_are_rejected():
    with pytest.raises(ValueError, match=r"'sru' is not available.*'lstm', 'gru' or 'rnn'"):
        RNNEncoder(4, 5, rnn_type="sru")
    with pytest.raises(ValueError, match=r"'sru' is not available"):
        PooledRNNEncoder(4, 5, rnn_type="SRU")
    with pytest.raises(ValueError, match="Unknown rnn_type 'transformer'"):
        RNNEncoder(4, 5, rnn_type="transformer")
    with pytest.raises(ValueError, match="layer_norm, highway_bias only apply to the SRU"):
        RNNEncoder(4, 5, layer_norm=True, highway_bias=-2)


@pytest.mark.parametrize("rnn_type, bidirectional", [("lstm", True), ("gru", False)])
def test_rnn_encoder_padding_matches_unpadded(rnn_type, bidirectional):
    seqs = _random_seqs([6, 2, 4, 1])
    batch, mask = _padded(seqs, pad_value=7.0)
    torch.manual_seed(1)
    enc = RNNEncoder(4, 3, n_layers=2, rnn_type=rnn_type, bidirectional=bidirectional).eval()
    out, state = enc(batch, padding_mask=mask)
    hidden = state[0] if rnn_type == "lstm" else state
    for i, seq in enumerate(seqs):
        alone_out, alone_state = enc(seq.unsqueeze(0))
        alone_hidden = alone_state[0] if rnn_type == "lstm" else alone_state
        n = len(seq)
        assert torch.allclose(out[i, :n], alone_out[0], atol=1e-6)
        assert torch.equal(out[i, n:], torch.zeros_like(out[i, n:]))
        assert torch.allclose(hidden[:, i], alone_hidden[:, 0], atol=1e-6)


def test_rnn_encoder_full_mask_equals_no_mask_and_float_mask():
    seqs = _random_seqs([3, 3])
    batch, mask = _padded(seqs)
    enc = RNNEncoder(4, 3).eval()
    assert torch.allclose(enc(batch, padding_mask=mask)[0], enc(batch)[0])
    short = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(enc(batch, padding_mask=short)[0], enc(batch, padding_mask=short.bool())[0])


# ---------------------------------------------------------------------- PooledRNNEncoder
@pytest.mark.parametrize("pooling", ["first", "last", "sum", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooled_rnn_padding_matches_unpadded(pooling, bidirectional):
    seqs = _random_seqs([5, 1, 3], seed=2)
    batch, mask = _padded(seqs, pad_value=-3.0)
    torch.manual_seed(3)
    enc = PooledRNNEncoder(4, 3, rnn_type="gru", bidirectional=bidirectional, pooling=pooling).eval()
    pooled = enc(batch, padding_mask=mask)
    assert pooled.shape == (3, enc.output_size)
    for i, seq in enumerate(seqs):
        assert torch.allclose(pooled[i], enc(seq.unsqueeze(0))[0], atol=1e-6)


def test_pooled_rnn_last_is_the_final_hidden_state_of_each_direction():
    seqs = _random_seqs([4, 2], seed=4)
    batch, mask = _padded(seqs)
    torch.manual_seed(5)
    enc = PooledRNNEncoder(4, 3, rnn_type="lstm", bidirectional=True).eval()
    assert enc.pooling == "last" and enc.hidden_size == 3 and enc.output_size == 6
    pooled = enc(batch, padding_mask=mask)
    _, (h, _) = RNNEncoder.forward(enc, batch, padding_mask=mask)
    assert torch.allclose(pooled, torch.cat([h[0], h[1]], dim=-1), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown pooling 'median'"):
        PooledRNNEncoder(4, 3, pooling="median")


# ---------------------------------------------------------------------- TextCNNEncoder
def test_text_cnn_hand_computed():
    enc = TextCNNEncoder(1, num_filters=1, kernel_sizes=[2], activation="none")
    with torch.no_grad():
        enc.convs[0].weight.fill_(1.0)
        enc.convs[0].bias.zero_()
    # wide windows over [1, 2, 3]: 0+1, 1+2, 2+3, 3+0 -> max 5
    assert torch.equal(enc(torch.tensor([[[1.0], [2.0], [3.0]]])), torch.tensor([[5.0]]))
    with torch.no_grad():
        enc.convs[0].weight.fill_(-1.0)
    # [1, 2, pad=100]: windows with a real token: -(0+1), -(1+2), -(2+0) -> max -1
    data = torch.tensor([[[1.0], [2.0], [100.0]], [[4.0], [5.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert torch.equal(enc(data, padding_mask=mask), torch.tensor([[-1.0], [0.0]]))  # empty row -> zeros


def test_text_cnn_shapes_and_short_sequences():
    enc = TextCNNEncoder(4, num_filters=6, kernel_sizes=[3, 4, 5], dropout=0.5)
    assert enc.output_size == 18 and len(enc.convs) == 3
    assert enc(torch.randn(2, 9, 4)).shape == (2, 18)
    assert enc(torch.randn(2, 1, 4)).shape == (2, 18)  # shorter than every kernel
    enc.eval()
    assert (enc(torch.randn(2, 9, 4)) >= 0).all()  # relu
    with pytest.raises(ValueError, match="Unknown activation"):
        TextCNNEncoder(4, activation="swish-ish")


def test_text_cnn_padding_matches_unpadded():
    seqs = _random_seqs([7, 1, 2, 5], seed=6)
    batch, mask = _padded(seqs)
    batch[~mask] = torch.randn(int((~mask).sum()), 4) * 5  # padding rows are not zero
    torch.manual_seed(7)
    enc = TextCNNEncoder(4, num_filters=5, kernel_sizes=[3, 4, 5], activation=nn.Tanh()).eval()
    pooled = enc(batch, padding_mask=mask)
    for i, seq in enumerate(seqs):
        assert torch.allclose(pooled[i], enc(seq.unsqueeze(0))[0], atol=1e-6)


# ---------------------------------------------------------------------- Embedder
def test_embedder_mask_passing_and_outputs():
    recorder = NnEncMaskRecorder()
    embedder = Embedder(Embeddings(9, 3), recorder, padding_idx=0)
    ids = torch.tensor([[4, 5, 0], [6, 0, 0]])
    out, state = embedder(ids)
    assert out.shape == (2, 3, 3) and state == "state"
    assert torch.equal(recorder.seen, torch.tensor([[True, True, False], [True, False, False]]))
    out, state, mask = Embedder(Embeddings(9, 3), NnEncMaskRecorder(), return_mask=True)(ids)
    assert torch.equal(mask, ids != 0)
    pooled, mask = Embedder(Embeddings(9, 3), NnEncMaskRecorder(), pooling=AvgPooling(), return_mask=True)(ids)
    assert pooled.shape == (2, 3)
    # an encoder whose forward has no padding_mask gets the embeddings alone
    linear = Embedder(nn.Embedding(9, 3), nn.Linear(3, 2))
    assert linear(ids).shape == (2, 3, 2)
    # no padding index: everything is real
    everything = NnEncMaskRecorder()
    Embedder(Embeddings(9, 3), everything, padding_idx=None)(ids)
    assert everything.seen.all()


def test_embedder_without_encoder_is_a_bag_of_embeddings():
    emb = Embeddings(9, 3)
    embedder = Embedder(emb, None, pooling=AvgPooling())
    ids = torch.tensor([[4, 5, 0]])
    assert torch.allclose(embedder(ids), emb.token_embedding.weight[[4, 5]].mean(0, keepdim=True))
    assert embedder.embeddings is emb


@pytest.mark.parametrize("kind", ["rnn_last", "pooled_rnn", "text_cnn"])
def test_embedder_padding_matches_unpadded(kind):
    torch.manual_seed(8)
    emb = Embeddings(20, 4, positional_encoding=True)  # padding positions get non-zero vectors
    if kind == "rnn_last":
        embedder = Embedder(emb, RNNEncoder(4, 3, rnn_type="gru"), pooling=LastPooling())
    elif kind == "pooled_rnn":
        embedder = Embedder(emb, PooledRNNEncoder(4, 3, bidirectional=True, pooling="max"))
    else:
        embedder = Embedder(emb, TextCNNEncoder(4, num_filters=3, kernel_sizes=[2, 3]))
    embedder.eval()
    seqs = [torch.tensor([3, 4, 5, 6]), torch.tensor([7]), torch.tensor([8, 9])]
    batch, _ = _padded(seqs, pad_value=0)
    out = embedder(batch)
    for i, seq in enumerate(seqs):
        assert torch.allclose(out[i], embedder(seq.unsqueeze(0))[0], atol=1e-6)


def test_embedder_save_load_round_trip(tmp_path):
    torch.manual_seed(9)
    embedder = Embedder(Embeddings(15, 4, positional_encoding=True),
                        RNNEncoder(4, 3, n_layers=2, bidirectional=True), pooling=AvgPooling(),
                        embedding_dropout=0.3)
    embedder.eval()
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    expected = embedder(ids)
    save(embedder, str(tmp_path / "embedder"))
    loaded = load(str(tmp_path / "embedder"))
    loaded.eval()
    assert isinstance(loaded, Embedder) and isinstance(loaded.encoder, RNNEncoder)
    assert torch.equal(loaded(ids), expected)
    assert loaded.drop.p == 0.3


# ---------------------------------------------------------------------- YAML
def test_text_classifier_stack_from_yaml(tmp_path):
    model = yaml.load("""
!NnEncTextClassifier
embedder: !Embedder
  embedding: !torch.Embedding {num_embeddings: 30, embedding_dim: 8, padding_idx: 0}
  embedding_dropout: 0.3
  encoder: !PooledRNNEncoder
    input_size: 8
    hidden_size: 5
    n_layers: 2
    rnn_type: gru
    bidirectional: true
    dropout: 0.2
output_layer: !SoftmaxLayer {input_size: 10, output_size: 3}
""")()
    assert model.embedder.encoder.rnn.hidden_size == 5
    ids = torch.tensor([[4, 5, 6], [7, 8, 0]])
    model.eval()
    pred, target = model(ids, torch.tensor([0, 2]))
    assert pred.shape == (2, 3) and torch.equal(target, torch.tensor([0, 2]))
    assert torch.allclose(pred.exp().sum(-1), torch.ones(2))
    save(model, str(tmp_path / "model"))
    loaded = load(str(tmp_path / "model"))
    loaded.eval()
    assert torch.equal(loaded(ids), pred)


def test_kim_cnn_stack_from_yaml_trains():
    model = yaml.load("""
!NnEncTextClassifier
embedder: !Embedder
  embedding: !Embeddings {num_embeddings: 30, embedding_dim: 8}
  encoder: !TextCNNEncoder {input_size: 8, num_filters: 4, kernel_sizes: [3, 4, 5], dropout: 0.5}
output_layer: !SoftmaxLayer {input_size: 12, output_size: 2}
""")()
    torch.manual_seed(10)
    ids = torch.randint(1, 30, (8, 6))
    ids[:4, 3:] = 0
    labels = torch.tensor([0, 1] * 4)
    losses = []
    for _ in range(30):  # plain gradient descent (a torch optimizer's first step costs ~1 s of imports)
        model.zero_grad()
        loss = nn.NLLLoss()(*model(ids, labels))
        loss.backward()
        with torch.no_grad():
            for param in model.trainable_params:
                param -= 0.5 * param.grad
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5
    assert model.embedder.embedding.token_embedding.weight.grad[0].abs().sum() == 0  # padding row
