"""Unit tests for flambe.nn layers: pooling, MLPs, softmax layers, Sequential, CNNEncoder, and the
small models of flambe.model and flambe.vision."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from flambe.compile import yaml
from flambe.compile.serialization import load, save
from flambe.model import LogisticRegression
from flambe.nn import (
    AvgPooling,
    CNNEncoder,
    FirstPooling,
    LastPooling,
    MaxPooling,
    MixtureOfSoftmax,
    MLPDecoder,
    MLPEncoder,
    Module,
    Sequential,
    SoftmaxLayer,
    SumPooling,
    conv_block,
)
from flambe.vision import ImageClassifier

# two sequences of 3 steps, H = 2; the second has one padding step holding large values
DATA = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                     [[7.0, 8.0], [9.0, 10.0], [100.0, 100.0]]])
MASK = torch.tensor([[True, True, True], [True, True, False]])


# ---------------------------------------------------------------------- pooling
@pytest.mark.parametrize("pool, expected", [
    (FirstPooling(), [[1.0, 2.0], [7.0, 8.0]]),
    (LastPooling(), [[5.0, 6.0], [9.0, 10.0]]),
    (SumPooling(), [[9.0, 12.0], [16.0, 18.0]]),
    (AvgPooling(), [[3.0, 4.0], [8.0, 9.0]]),
    (MaxPooling(), [[5.0, 6.0], [9.0, 10.0]]),
])
def test_pooling_hand_computed_with_mask(pool, expected):
    out = pool(DATA, MASK)
    assert out.shape == (2, 2)
    assert torch.equal(out, torch.tensor(expected))
    # a float mask means the same as a bool one
    assert torch.equal(pool(DATA, MASK.float()), torch.tensor(expected))


@pytest.mark.parametrize("pool, expected", [
    (FirstPooling(), [[1.0, 2.0], [7.0, 8.0]]),
    (LastPooling(), [[5.0, 6.0], [100.0, 100.0]]),
    (SumPooling(), [[9.0, 12.0], [116.0, 118.0]]),
    (AvgPooling(), [[3.0, 4.0], [116.0 / 3, 118.0 / 3]]),
    (MaxPooling(), [[5.0, 6.0], [100.0, 100.0]]),
])
def test_pooling_without_mask_uses_every_position(pool, expected):
    assert torch.allclose(pool(DATA), torch.tensor(expected))


def test_max_pooling_ignores_padding_even_when_padding_would_win():
    data = torch.tensor([[[-1.0, -5.0], [-3.0, -2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(MaxPooling()(data, mask), torch.tensor([[-1.0, -2.0]]))


def test_pooling_left_padding_and_empty_rows():
    data = torch.tensor([[[50.0], [2.0], [4.0]], [[7.0], [8.0], [9.0]]])
    mask = torch.tensor([[0, 1, 1], [0, 0, 0]])
    assert torch.equal(FirstPooling()(data, mask)[0], torch.tensor([2.0]))
    assert torch.equal(LastPooling()(data, mask)[0], torch.tensor([4.0]))
    assert torch.equal(AvgPooling()(data, mask), torch.tensor([[3.0], [0.0]]))
    assert torch.equal(MaxPooling()(data, mask), torch.tensor([[4.0], [0.0]]))
    assert torch.equal(SumPooling()(data, mask), torch.tensor([[6.0], [0.0]]))


def test_pooling_matches_unpadded_sequences():
    torch.manual_seed(0)
    lengths = [5, 2, 4]
    seqs = [torch.randn(n, 3) for n in lengths]
    batch = torch.randn(3, 5, 3) * 10  # garbage in the padding positions
    mask = torch.zeros(3, 5, dtype=torch.bool)
    for i, seq in enumerate(seqs):
        batch[i, : len(seq)] = seq
        mask[i, : len(seq)] = True
    for pool in (FirstPooling(), LastPooling(), SumPooling(), AvgPooling(), MaxPooling()):
        pooled = pool(batch, mask)
        for i, seq in enumerate(seqs):
            assert torch.allclose(pooled[i], pool(seq.unsqueeze(0))[0], atol=1e-6), type(pool).__name__


def test_pooling_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B x S x H\]"):
        AvgPooling()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="padding_mask"):
        AvgPooling()(DATA, torch.ones(2, 4))


# ---------------------------------------------------------------------- MLPs and output layers
def test_mlp_encoder_structure_and_shapes():
    mlp = MLPEncoder(6, 3, n_layers=3, dropout=0.2, output_activation=nn.Tanh(), hidden_size=5,
                     hidden_activation=nn.ReLU())
    kinds = [type(m).__name__ for m in mlp.seq]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "Tanh"]
    assert mlp.seq[1] is not mlp.seq[4]  # each layer has its own activation
    assert [mlp.seq[i].out_features for i in (0, 3, 6)] == [5, 5, 3]
    assert mlp(torch.randn(4, 6)).shape == (4, 3)
    assert mlp(torch.randn(2, 7, 6)).shape == (2, 7, 3)
    mlp.eval()
    assert mlp(torch.randn(4, 6)).abs().max() < 1  # tanh output


def test_mlp_single_layer_is_linear_and_hidden_size_required():
    torch.manual_seed(0)
    mlp = MLPDecoder(4, 2)
    assert len(mlp.seq) == 1
    x = torch.randn(3, 4)
    assert torch.allclose(mlp(x), x @ mlp.seq[0].weight.t() + mlp.seq[0].bias)
    with pytest.raises(ValueError, match="hidden_size"):
        MLPDecoder(4, 2, n_layers=2)
    with pytest.raises(ValueError, match="n_layers"):
        MLPEncoder(4, 2, n_layers=0)


def test_mlp_decoder_argument_order():
    dec = MLPDecoder(4, 2, 2, None, 8, nn.ReLU(), 0.5)
    assert [type(m).__name__ for m in dec.seq] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert dec.seq[2].p == 0.5


def test_softmax_layer_log_and_plain():
    torch.manual_seed(0)
    layer = SoftmaxLayer(5, 4)
    x = torch.randn(3, 5)
    logp = layer(x)
    assert logp.shape == (3, 4)
    linear = layer.mlp.seq[0]
    assert torch.allclose(logp, torch.log_softmax(x @ linear.weight.t() + linear.bias, dim=-1))
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3))
    plain = SoftmaxLayer(5, 4, take_log=False)
    assert torch.allclose(plain(x).sum(-1), torch.ones(3))
    assert (plain(x) > 0).all()
    deep = SoftmaxLayer(5, 4, mlp_layers=2, mlp_hidden_activation=nn.ReLU())
    assert [type(m).__name__ for m in deep.mlp.seq] == ["Linear", "ReLU", "Linear"]
    assert deep.mlp.seq[0].out_features == 5
    # NLLLoss on the output is the cross entropy of the raw scores
    target = torch.tensor([0, 3, 1])
    scores = x @ linear.weight.t() + linear.bias
    assert torch.allclose(nn.NLLLoss()(logp, target), nn.CrossEntropyLoss()(scores, target))


def test_mixture_of_softmax_k1_and_uniform_mixture():
    torch.manual_seed(0)
    mos = MixtureOfSoftmax(4, 6, k=1)
    x = torch.randn(2, 3, 4)
    out = mos(x)
    assert out.shape == (2, 3, 6)
    expected = torch.log_softmax(mos.layers[0](torch.tanh(mos.projections[0](x))), dim=-1)
    assert torch.allclose(out, expected, atol=1e-6)

    mos3 = MixtureOfSoftmax(4, 6, k=3, take_log=False)
    with torch.no_grad():
        mos3.pi.weight.zero_()
        mos3.pi.bias.zero_()  # pi = 1/3 each
    probs = mos3(x)
    manual = sum(torch.softmax(layer(torch.tanh(proj(x))), dim=-1)
                 for proj, layer in zip(mos3.projections, mos3.layers)) / 3
    assert torch.allclose(probs, manual, atol=1e-6)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 3))
    with pytest.raises(ValueError, match="k must be"):
        MixtureOfSoftmax(4, 6, k=0)


# ---------------------------------------------------------------------- Sequential
def test_sequential_applies_in_order_and_forwards_the_mask():
    torch.manual_seed(0)
    seq = Sequential(project=nn.Linear(2, 3), pool=AvgPooling())
    assert list(dict(seq.named_children())) == ["project", "pool"]
    assert set(seq.state_dict()) == {"project.weight", "project.bias"}
    out = seq(DATA, padding_mask=MASK)
    assert torch.allclose(out, AvgPooling()(seq.project(DATA), MASK))
    assert torch.allclose(seq(DATA), seq.project(DATA).mean(1))
    with pytest.raises(TypeError, match="not a torch module"):
        Sequential(a=3)


def test_sequential_from_yaml_keeps_mapping_order():
    seq = yaml.load("""
!Sequential
  second: !torch.Linear {in_features: 4, out_features: 2}
  first: !torch.ReLU {}
""")()
    assert list(dict(seq.named_children())) == ["second", "first"]
    assert (seq(torch.randn(3, 4)) >= 0).all()


# ---------------------------------------------------------------------- CNNEncoder
@pytest.mark.parametrize("conv_dim, shape, out_shape", [
    (1, (2, 3, 20), (2, 8, 16)),
    (2, (2, 3, 12, 10), (2, 8, 8, 6)),
    (3, (2, 3, 6, 6, 6), (2, 8, 2, 2, 2)),
])
def test_cnn_encoder_shapes(conv_dim, shape, out_shape):
    cnn = CNNEncoder(3, [4, 8], conv_dim=conv_dim, activation=nn.ReLU())
    assert cnn(torch.randn(*shape)).shape == out_shape
    assert cnn.output_channels == 8


def test_cnn_encoder_blocks_kernels_and_pooling():
    cnn = CNNEncoder(1, [4, 6], kernel_size=[3, (5, 3)], activation=nn.ReLU(), pooling=nn.MaxPool2d(2),
                     dropout=0.1, padding=1)
    first, second = cnn.cnn
    assert [type(m).__name__ for m in first] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Dropout"]
    assert second[0].kernel_size == (5, 3) and first[0].kernel_size == (3, 3)
    assert first[2] is not second[2]
    # 28 -> conv(pad 1) 28 -> pool 14 -> conv (5,3) pad 1: (12, 14) -> pool (6, 7)
    assert cnn(torch.randn(2, 1, 28, 28)).shape == (2, 6, 6, 7)
    plain = CNNEncoder(1, [2], batch_norm=False)
    assert [type(m).__name__ for m in plain.cnn[0]] == ["Conv2d"]
    with pytest.raises(ValueError, match="kernel_size"):
        CNNEncoder(1, [2, 3], kernel_size=[3])
    with pytest.raises(ValueError, match="conv_dim"):
        CNNEncoder(1, [2], conv_dim=4)


def test_conv_block_order():
    block = conv_block(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.MaxPool1d(2), 0.0, nn.BatchNorm1d(2))
    assert [type(m).__name__ for m in block] == ["Conv1d", "BatchNorm1d", "ReLU", "MaxPool1d"]


# ---------------------------------------------------------------------- models
def test_logistic_regression_hand_computed():
    model = LogisticRegression(2)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.linear.bias.fill_(0.5)
    data = torch.tensor([[1.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
    expected = torch.tensor([1 / (1 + math.exp(0.5)), 1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(-3.5))])
    pred = model(data)
    assert pred.shape == (3,)
    assert torch.allclose(pred, expected)
    pred, target = model(data, torch.tensor([1, 0, 1]))
    assert target.dtype == torch.float32 and torch.equal(target, torch.tensor([1.0, 0.0, 1.0]))
    assert torch.isfinite(nn.BCELoss()(pred, target))


def test_image_classifier_from_yaml_and_round_trip(tmp_path):
    model = yaml.load("""
!ImageClassifier
encoder: !CNNEncoder
  input_channels: 1
  channels: [4, 6]
  activation: !torch.ReLU {}
  pooling: !torch.MaxPool2d {kernel_size: 2}
output_layer: !SoftmaxLayer {input_size: 24, output_size: 10}
""")()
    images = torch.randn(3, 1, 16, 16)  # 16 -> 14 -> 7 -> 5 -> 2: 6 x 2 x 2 = 24 features
    model.eval()
    pred = model(images)
    assert pred.shape == (3, 10)
    assert torch.allclose(pred.exp().sum(-1), torch.ones(3))
    out, target = model(images, torch.tensor([1, 2, 3]))
    assert torch.equal(out, pred) and torch.equal(target, torch.tensor([1, 2, 3]))
    save(model, str(tmp_path / "clf"))
    loaded = load(str(tmp_path / "clf"))
    loaded.eval()
    assert torch.equal(loaded(images), pred)


class NnLayersTupleEncoder(Module):
    def forward(self, data):
        return data * 2, "state"


def test_image_classifier_flattens_and_takes_first_output():
    torch.manual_seed(0)
    out_layer = nn.Linear(8, 3)
    clf = ImageClassifier(NnLayersTupleEncoder(), out_layer)
    images = torch.randn(2, 2, 2, 2)
    assert torch.allclose(clf(images), out_layer((images * 2).reshape(2, 8)))


def test_embeddings_init_range_is_uniform_with_a_zero_padding_row():
    from flambe.nn import Embeddings
    torch.manual_seed(0)
    emb = Embeddings(500, 40, init_range=0.25)
    weight = emb.token_embedding.weight
    assert torch.equal(weight[0], torch.zeros(40))
    assert weight.abs().max() <= 0.25 and weight[1:].abs().max() > 0.2
    assert abs(weight[1:].mean().item()) < 0.01  # centred, not N(0, 1)
    with pytest.raises(ValueError, match="init_range"):
        Embeddings(10, 4, init_range=0)
