"""Unit tests for flambe.nn.transformer and flambe.nn.distance."""

from __future__ import annotations

import math

import pytest
import torch

from flambe.compile import yaml
from flambe.compile.serialization import load, save
from flambe.nn import (
    AvgPooling,
    CosineDistance,
    CosineMean,
    Embedder,
    Embeddings,
    EuclideanDistance,
    EuclideanMean,
    HyperbolicDistance,
    HyperbolicMean,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    generate_square_subsequent_mask,
    get_distance_module,
    get_mean_module,
)
from flambe.nn.distance.hyperbolic import (
    arccosh,
    dist,
    einstein_midpoint,
    exp_map_zero,
    klein_to_poincare,
    log_map_zero,
    poincare_to_klein,
)
from flambe.nn.transformer import key_padding_mask


# ---------------------------------------------------------------------- transformer
def test_square_subsequent_mask_values():
    inf = float("-inf")
    expected = torch.tensor([[0.0, inf, inf], [0.0, 0.0, inf], [0.0, 0.0, 0.0]])
    assert torch.equal(generate_square_subsequent_mask(3), expected)


def test_key_padding_mask_conversion():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert torch.equal(key_padding_mask(mask), torch.tensor([[False, False, True], [False, True, True]]))
    as_float = key_padding_mask(mask.bool(), generate_square_subsequent_mask(3))
    assert as_float.dtype == torch.float32
    assert torch.equal(as_float == float("-inf"), mask == 0)
    assert key_padding_mask(None) is None


def test_encoder_layer_and_encoder_shapes():
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert layer(torch.randn(3, 5, 8)).shape == (3, 5, 8)
    enc = TransformerEncoder(6, d_model=8, nhead=2, num_layers=2, dim_feedforward=16)
    assert enc.proj is not None and enc.proj.in_features == 6 and enc.output_size == 8
    assert len(enc.layers) == 2
    assert enc(torch.randn(3, 5, 6)).shape == (3, 5, 8)
    same = TransformerEncoder(8, d_model=8, nhead=2, num_layers=1, dim_feedforward=16)
    assert same.proj is None


def test_encoder_padding_matches_unpadded():
    torch.manual_seed(0)
    enc = TransformerEncoder(4, d_model=8, nhead=2, num_layers=2, dim_feedforward=16, dropout=0.0).eval()
    seqs = [torch.randn(5, 4), torch.randn(2, 4)]
    batch = torch.randn(2, 5, 4) * 3
    batch[0] = seqs[0]
    batch[1, :2] = seqs[1]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    out = enc(batch, padding_mask=mask)
    assert torch.allclose(out[0], enc(seqs[0].unsqueeze(0))[0], atol=1e-5)
    assert torch.allclose(out[1, :2], enc(seqs[1].unsqueeze(0))[0], atol=1e-5)
    # without the mask the padding leaks into the real positions
    assert not torch.allclose(enc(batch)[1, :2], out[1, :2], atol=1e-3)


def test_embedder_with_transformer_encoder_gets_the_mask():
    torch.manual_seed(1)
    embedder = Embedder(Embeddings(12, 8, positional_encoding=True),
                        TransformerEncoder(8, 8, nhead=2, num_layers=1, dim_feedforward=16, dropout=0.0),
                        pooling=AvgPooling()).eval()
    batch = torch.tensor([[3, 4, 5], [6, 7, 0]])
    out = embedder(batch)
    assert out.shape == (2, 8)
    assert torch.allclose(out[1], embedder(torch.tensor([[6, 7]]))[0], atol=1e-5)


def test_decoder_is_causal_with_the_subsequent_mask():
    torch.manual_seed(2)
    dec = TransformerDecoder(4, d_model=8, nhead=2, num_layers=2, dim_feedforward=16, dropout=0.0).eval()
    assert isinstance(dec.layers[0], TransformerDecoderLayer)
    memory = torch.randn(2, 3, 8)
    tgt = torch.randn(2, 4, 4)
    causal = generate_square_subsequent_mask(4)
    out = dec(tgt, memory, tgt_mask=causal)
    assert out.shape == (2, 4, 8)
    changed = tgt.clone()
    changed[:, 3] += 5.0  # changing the last step leaves earlier outputs alone
    out_changed = dec(changed, memory, tgt_mask=causal)
    assert torch.allclose(out[:, :3], out_changed[:, :3], atol=1e-5)
    assert not torch.allclose(out[:, 3], out_changed[:, 3], atol=1e-3)


def test_transformer_shapes_and_memory_padding_default():
    torch.manual_seed(3)
    model = Transformer(6, d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                        dim_feedforward=16, dropout=0.0).eval()
    src, tgt = torch.randn(2, 5, 6), torch.randn(2, 3, 6)
    assert model(src, tgt).shape == (2, 3, 8) and model.output_size == 8
    src_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = model(src, tgt, src_key_padding_mask=src_mask)
    explicit = model(src, tgt, src_key_padding_mask=src_mask, memory_key_padding_mask=src_mask)
    assert torch.equal(out, explicit)
    alone = model(src[:1, :3], tgt[:1])
    assert torch.allclose(out[0], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="same batch size"):
        model(src, tgt[:1])


def test_transformer_from_yaml_and_round_trip(tmp_path):
    enc = yaml.load("!TransformerEncoder {input_size: 4, d_model: 8, nhead: 2, num_layers: 2, "
                    "dim_feedforward: 16}")().eval()
    data = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    expected = enc(data, padding_mask=mask)
    save(enc, str(tmp_path / "enc"))
    loaded = load(str(tmp_path / "enc")).eval()
    assert torch.equal(loaded(data, padding_mask=mask), expected)


# ---------------------------------------------------------------------- euclidean and cosine
def test_euclidean_distance_and_mean_hand_computed():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    assert torch.equal(EuclideanDistance()(a, b), torch.tensor([[1.0, 25.0, 2.0], [1.0, 13.0, 0.0]]))
    assert torch.equal(EuclideanMean()(b), torch.tensor([5.0 / 3, 5.0 / 3]))
    with pytest.raises(ValueError, match=r"\[n_1 x f\]"):
        EuclideanDistance()(a, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="non-empty"):
        EuclideanMean()(torch.zeros(0, 2))


def test_cosine_distance_and_mean_hand_computed():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 2.0], [-3.0, 0.0], [5.0, 0.0]])
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1.0, 2.0, 0.0], [1 - r, 1 + r, 1 - r]])
    assert torch.allclose(CosineDistance()(a, b), expected, atol=1e-6)
    # zero vectors are at distance 1 from everything
    assert torch.allclose(CosineDistance()(torch.zeros(1, 2), b), torch.ones(1, 3))
    # the mean direction ignores lengths: [2, 0] and [0, 5] -> the diagonal
    assert torch.allclose(CosineMean()(torch.tensor([[2.0, 0.0], [0.0, 5.0]])), torch.tensor([r, r]))


def test_cosine_mean_minimises_the_summed_cosine_distance():
    torch.manual_seed(4)
    data = torch.randn(6, 3)
    mean = CosineMean()(data)
    best = CosineDistance()(mean.unsqueeze(0), data).sum()
    for _ in range(20):
        other = mean + 0.1 * torch.randn(3)
        assert CosineDistance()(other.unsqueeze(0), data).sum() >= best - 1e-6


def test_detach_mean():
    data = torch.randn(4, 3, requires_grad=True)
    assert EuclideanMean()(data).requires_grad
    assert not EuclideanMean(detach_mean=True)(data).requires_grad
    assert not get_mean_module("hyperbolic", detach_mean=True)(data).requires_grad


# ---------------------------------------------------------------------- hyperbolic
def test_hyperbolic_distance_from_origin_and_along_a_ray():
    hyp = HyperbolicDistance()
    origin = torch.zeros(1, 2)
    points = torch.tensor([[0.5, 0.0], [0.0, -1.5], [0.6, 0.8]])
    # d(0, exp_0(v)) = 2 |v|
    assert torch.allclose(hyp(origin, points), torch.tensor([[1.0, 3.0, 2.0]]), atol=1e-5)
    # along one geodesic through the origin, distances add up
    ray = torch.tensor([[0.3, 0.0], [1.0, 0.0], [-0.5, 0.0]])
    d = hyp(ray, ray)
    assert torch.allclose(d[0, 1], torch.tensor(1.4), atol=1e-5)
    assert torch.allclose(d[0, 2], torch.tensor(1.6), atol=1e-5)
    assert torch.allclose(d, d.t(), atol=1e-6)
    assert d.diagonal().abs().max() < 1e-5


def test_poincare_distance_closed_form():
    x = torch.tensor([0.1, 0.2])
    y = torch.tensor([-0.3, 0.4])
    sq = (0.4 ** 2 + 0.2 ** 2)
    expected = math.acosh(1 + 2 * sq / ((1 - 0.05) * (1 - 0.25)))
    assert math.isclose(dist(x, y).item(), expected, rel_tol=1e-5)
    assert torch.allclose(arccosh(torch.tensor([1.0, 2.0])), torch.tensor([0.0, math.acosh(2.0)]), atol=1e-5)


def test_model_conversions_round_trip():
    p = torch.tensor([[0.3, -0.4], [0.0, 0.9]])
    assert torch.allclose(klein_to_poincare(poincare_to_klein(p)), p, atol=1e-6)
    v = torch.tensor([[0.7, -1.2], [0.01, 0.0]])
    assert torch.allclose(log_map_zero(exp_map_zero(v)), v, atol=1e-4)
    # the Einstein midpoint of one point is the point itself
    k = poincare_to_klein(p[:1])
    assert torch.allclose(einstein_midpoint(k), k[0])


def test_hyperbolic_mean_hand_computed():
    mean = HyperbolicMean()
    # two points on one ray: the geodesic midpoint is halfway in hyperbolic length, (0.2 + 1.0) / 2
    assert torch.allclose(mean(torch.tensor([[0.2, 0.0], [1.0, 0.0]])), torch.tensor([0.6, 0.0]), atol=1e-4)
    # symmetric points average to the origin; one point is its own mean
    assert torch.allclose(mean(torch.tensor([[0.5, -0.7], [-0.5, 0.7]])), torch.zeros(2), atol=1e-6)
    assert torch.allclose(mean(torch.tensor([[0.4, 0.3]])), torch.tensor([0.4, 0.3]), atol=1e-5)


def test_hyperbolic_mean_of_two_points_is_their_midpoint():
    torch.manual_seed(5)
    pair = torch.randn(2, 3)
    m = HyperbolicMean()(pair)
    d = HyperbolicDistance()(m.unsqueeze(0), pair)[0]
    whole = HyperbolicDistance()(pair[:1], pair[1:])[0, 0]
    assert torch.allclose(d[0], d[1], atol=1e-4)
    assert torch.allclose(d[0], whole / 2, atol=1e-4)


def test_hyperbolic_gradients_are_finite():
    data = torch.randn(5, 3, requires_grad=True)
    proto = HyperbolicMean()(data[:3])
    distances = HyperbolicDistance()(data, proto.unsqueeze(0))
    distances.sum().backward()
    assert torch.isfinite(data.grad).all()


def test_get_modules_by_name():
    assert isinstance(get_distance_module("euclidean"), EuclideanDistance)
    assert isinstance(get_distance_module("Cosine"), CosineDistance)
    assert isinstance(get_distance_module("hyperbolic"), HyperbolicDistance)
    assert isinstance(get_mean_module("euclidean"), EuclideanMean)
    assert isinstance(get_mean_module("cosine"), CosineMean)
    assert isinstance(get_mean_module("hyperbolic"), HyperbolicMean)
    with pytest.raises(ValueError, match="Unknown distance 'manhattan'.*euclidean, cosine, hyperbolic"):
        get_distance_module("manhattan")
    with pytest.raises(ValueError, match="Unknown distance"):
        get_mean_module("manhattan")
