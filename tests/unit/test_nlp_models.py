"""Unit tests of flambe.nlp models and LMField: shapes, hand-computed values, save/load round-trips."""

from __future__ import annotations

import math

import pytest
import torch

import flambe
from flambe.nlp.classification import TextClassifier
from flambe.nlp.fewshot import PrototypicalTextClassifier
from flambe.nlp.language_modeling import LanguageModel, LMField
from flambe.nn.embedding import Embedder, Embeddings
from flambe.nn.pooling import AvgPooling
from flambe.nn.softmax import SoftmaxLayer


def _linear(layer: SoftmaxLayer) -> torch.nn.Linear:
    return [m for m in layer.modules() if isinstance(m, torch.nn.Linear)][-1]


def _fixed_embeddings(rows: list) -> Embeddings:
    """Embeddings whose table is exactly ``rows`` (row 0 is the pad row)."""
    emb = Embeddings(len(rows), len(rows[0]), padding_idx=0)
    with torch.no_grad():
        emb.token_embedding.weight.copy_(torch.tensor(rows, dtype=torch.float))
    return emb


# ---------------------------------------------------------------------- TextClassifier
def _classifier(dropout: float = 0.0) -> TextClassifier:
    torch.manual_seed(0)
    embedder = Embedder(Embeddings(10, 4), encoder=None, pooling=AvgPooling())
    return TextClassifier(embedder, SoftmaxLayer(4, 3), dropout=dropout)


def test_text_classifier_forward_with_and_without_target():
    model = _classifier().eval()
    data = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    target = torch.tensor([2, 0])
    pred = model(data)
    assert pred.shape == (2, 3)
    # Hand-computed: the mean of the real tokens' embeddings, then log_softmax(W x + b).
    table = model.embedder.embedding.token_embedding.weight
    linear = _linear(model.output_layer)
    for row, ids in enumerate(([1, 2, 3], [4, 5])):
        mean = table[ids].mean(dim=0)
        expected = torch.log_softmax(linear.weight @ mean + linear.bias, dim=-1)
        assert torch.allclose(pred[row], expected, atol=1e-6)
    pred2, target2 = model(data, target)
    assert torch.equal(pred2, pred)
    assert target2 is target


def test_text_classifier_dropout_between_embedder_and_output():
    model = _classifier(dropout=0.5)
    assert model.drop.p == 0.5
    data = torch.randint(1, 10, (8, 6))
    model.eval()
    assert torch.equal(model(data), model(data))
    model.train()
    torch.manual_seed(1)
    first = model(data)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(data))


def test_text_classifier_save_load_round_trip(tmp_path):
    model = _classifier(dropout=0.1).eval()
    data = torch.tensor([[1, 2, 3], [7, 8, 0]])
    flambe.save(model, str(tmp_path / "clf"))
    loaded = flambe.load(str(tmp_path / "clf")).eval()
    assert isinstance(loaded, TextClassifier)
    assert loaded.drop.p == 0.1
    assert torch.allclose(loaded(data), model(data))


# ---------------------------------------------------------------------- LanguageModel
def _lm(tie: bool = False, vocab: int = 7, dim: int = 5) -> LanguageModel:
    torch.manual_seed(0)
    embedder = Embedder(Embeddings(vocab, dim), encoder=None)
    return LanguageModel(embedder, SoftmaxLayer(dim, vocab), tie_weights=tie)


def test_language_model_outputs_batch_first_log_probs():
    model = _lm().eval()
    data = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    pred = model(data)
    assert pred.shape == (2, 4, 7)
    assert torch.allclose(pred.exp().sum(-1), torch.ones(2, 4), atol=1e-5)


def test_language_model_flattens_non_pad_positions():
    model = _lm().eval()
    data = torch.tensor([[1, 2, 3, 4], [5, 6, 2, 0], [3, 0, 0, 0]])
    target = torch.tensor([[2, 3, 4, 6], [6, 2, 6, 0], [6, 0, 0, 0]])
    full = model(data)
    pred, flat_target = model(data, target)
    assert pred.shape == (8, 7) and flat_target.shape == (8,)
    assert flat_target.tolist() == [2, 3, 4, 6, 6, 2, 6, 6]
    positions = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (2, 0)]
    for row, (b, s) in enumerate(positions):
        assert torch.equal(pred[row], full[b, s])
    loss = torch.nn.NLLLoss()(pred, flat_target)
    assert math.isfinite(loss.item())


def test_language_model_custom_pad_index():
    model = LanguageModel(Embedder(Embeddings(5, 3, padding_idx=None), encoder=None, padding_idx=None),
                          SoftmaxLayer(3, 5), pad_index=4)
    pred, target = model(torch.tensor([[1, 2, 3]]), torch.tensor([[2, 4, 0]]))
    assert target.tolist() == [2, 0]
    assert pred.shape == (2, 5)


def test_language_model_tie_weights_shares_the_embedding_matrix():
    model = _lm(tie=True)
    embedding = model.embedder.embedding.token_embedding.weight
    assert _linear(model.output_layer).weight is embedding
    # One shared parameter: an optimizer sees it once, and its gradient collects both uses.
    assert sum(p is embedding for p in model.parameters()) == 1
    data = torch.tensor([[1, 2, 3]])
    pred, target = model(data, torch.tensor([[2, 3, 4]]))
    torch.nn.NLLLoss()(pred, target).backward()
    assert embedding.grad is not None and embedding.grad[5].abs().sum() > 0  # row 5 only used by the output


def test_language_model_untied_weights_are_separate():
    model = _lm(tie=False)
    assert _linear(model.output_layer).weight is not model.embedder.embedding.token_embedding.weight


def test_language_model_tie_weights_shape_mismatch_is_a_clear_error():
    embedder = Embedder(Embeddings(7, 5), encoder=None)
    with pytest.raises(ValueError, match=r"tie_weights=True.*\[7, 5\].*\(7, 4\)"):
        LanguageModel(embedder, SoftmaxLayer(4, 7), tie_weights=True)


def test_language_model_tied_save_load_round_trip(tmp_path):
    model = _lm(tie=True).eval()
    with torch.no_grad():
        model.embedder.embedding.token_embedding.weight.add_(0.25)
    flambe.save(model, str(tmp_path / "lm"))
    loaded = flambe.load(str(tmp_path / "lm")).eval()
    assert _linear(loaded.output_layer).weight is loaded.embedder.embedding.token_embedding.weight
    data = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(loaded(data), model(data))


# ---------------------------------------------------------------------- LMField
def test_lm_field_returns_input_and_shifted_target():
    field = LMField()
    field.setup(["the cat sat", "the dog"])
    # specials: <pad>=0, <unk>=1, <eos>=2; words in order of appearance.
    assert field.vocab == {"<pad>": 0, "<unk>": 1, "<eos>": 2, "the": 3, "cat": 4, "sat": 5, "dog": 6}
    source, target = field.process("the cat sat")
    assert source.tolist() == [3, 4, 5]
    assert target.tolist() == [4, 5, 2]
    source, target = field.process("the bird")
    assert source.tolist() == [3, 1] and target.tolist() == [1, 2]


def test_lm_field_with_sos_token_and_state_round_trip(tmp_path):
    field = LMField(sos_token="<s>", lower=True)
    field.setup(["A b"])
    source, target = field.process("a B")
    assert source.tolist() == [2, 4, 5] and target.tolist() == [4, 5, 3]
    flambe.save(field, str(tmp_path / "field"))
    loaded = flambe.load(str(tmp_path / "field"))
    assert isinstance(loaded, LMField)
    assert loaded.vocab == field.vocab
    assert [t.tolist() for t in loaded.process("a b")] == [[2, 4, 5], [4, 5, 3]]


# ---------------------------------------------------------------------- PrototypicalTextClassifier
def _proto_model(distance: str = "euclidean", detach_mean: bool = False) -> PrototypicalTextClassifier:
    # id 1 -> (10, 0), 2 -> (0, 10), 3 -> (-10, 0), 4 -> (2, 2); mean pooling over real tokens.
    emb = _fixed_embeddings([[0, 0], [10, 0], [0, 10], [-10, 0], [2, 2]])
    return PrototypicalTextClassifier(Embedder(emb, encoder=None, pooling=AvgPooling()), distance=distance,
                                      detach_mean=detach_mean)


def test_compute_prototypes_are_class_means():
    model = _proto_model()
    support = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    label = torch.tensor([0, 0, 1, 1, 1])
    protos = model.compute_prototypes(support, label)
    assert torch.allclose(protos, torch.tensor([[2.0, 3.0], [4.0, 2.0 / 3.0]]))
    assert model.classes.tolist() == [0, 1]
    assert model.prototypes is protos


def test_prototypical_classifier_picks_the_nearest_prototype():
    model = _proto_model()
    support = torch.tensor([[1, 1], [1, 0], [2, 2], [2, 0], [3, 3], [3, 0]])
    support_label = torch.tensor([0, 0, 1, 1, 2, 2])
    query = torch.tensor([[2, 0], [1, 4], [3, 3], [4, 3]])  # encodings (0,10), (6,1), (-10,0), (-4,1)
    pred, target = model(query, torch.tensor([1, 0, 2, 2]), support, support_label)
    assert pred.shape == (4, 3)
    assert pred.argmax(dim=-1).tolist() == [1, 0, 2, 2]
    assert target.tolist() == [1, 0, 2, 2]
    # Hand-computed: squared distances of (6, 1) to (10, 0), (0, 10), (-10, 0) are 17, 117, 257.
    expected = torch.log_softmax(-torch.tensor([17.0, 117.0, 257.0]), dim=0)
    assert torch.allclose(pred[1], expected)
    assert torch.allclose(pred.exp().sum(-1), torch.ones(4))


def test_prototypical_classifier_maps_labels_to_prototype_positions():
    model = _proto_model()
    support = torch.tensor([[1], [2], [3]])
    pred, target = model(torch.tensor([[3], [1]]), torch.tensor([9, 5]), support, torch.tensor([5, 7, 9]))
    assert model.classes.tolist() == [5, 7, 9]
    assert target.tolist() == [2, 0]
    assert pred.argmax(-1).tolist() == [2, 0]
    with pytest.raises(ValueError, match="no support examples"):
        model(torch.tensor([[1]]), torch.tensor([6]), support, torch.tensor([5, 7, 9]))


def test_prototypical_classifier_reuses_or_takes_prototypes():
    model = _proto_model()
    model(torch.tensor([[1]]), None, torch.tensor([[1], [2]]), torch.tensor([0, 1]))
    stored = model(torch.tensor([[2]]))  # prototypes of the last support set
    assert stored.argmax(-1).tolist() == [1]
    given = model(torch.tensor([[2]]), torch.tensor([0]), prototypes=torch.tensor([[0.0, 10.0], [10.0, 0.0]]))
    assert given[0].argmax(-1).tolist() == [0] and given[1].tolist() == [0]
    with pytest.raises(ValueError, match="support_label"):
        model(torch.tensor([[1]]), support=torch.tensor([[1]]))
    with pytest.raises(ValueError, match="No prototypes"):
        _proto_model()(torch.tensor([[1]]))


def test_prototypical_classifier_detach_mean_and_gradients():
    support, label = torch.tensor([[1], [2]]), torch.tensor([0, 1])
    query, query_label = torch.tensor([[1, 4]]), torch.tensor([0])
    for detach in (False, True):
        model = _proto_model(detach_mean=detach)
        pred, target = model(query, query_label, support, label)
        torch.nn.NLLLoss()(pred, target).backward()
        grad = model.embedder.embedding.token_embedding.weight.grad
        # Token 2 only occurs in the support set: it gets a gradient only through the prototypes.
        assert bool(grad[2].abs().sum() > 0) is (not detach)
        assert bool(grad[4].abs().sum() > 0)


def test_prototypical_classifier_cosine_and_save_load(tmp_path):
    model = _proto_model(distance="cosine")
    support, label = torch.tensor([[1], [2], [3]]), torch.tensor([0, 1, 2])
    pred = model(torch.tensor([[1, 1, 4]]), None, support, label)
    assert pred.argmax(-1).tolist() == [0]
    flambe.save(model, str(tmp_path / "proto"))
    loaded = flambe.load(str(tmp_path / "proto"))
    assert loaded.distance == "cosine"
    assert torch.allclose(loaded(torch.tensor([[1, 1, 4]]), None, support, label), pred)


def test_prototypical_classifier_consumes_episodic_sampler_batches():
    from flambe.dataset import TabularDataset
    from flambe.field import LabelField, TextField
    from flambe.sampler import EpisodicSampler

    rows = [[f"{word} {word} x{i}", label] for label, word in enumerate(["red", "green", "blue"]) for i in range(6)]
    dataset = TabularDataset(rows, transform={"text": TextField(), "label": LabelField()})
    torch.manual_seed(0)
    embedder = Embedder(Embeddings(dataset.text.vocab_size, 8), encoder=None, pooling=AvgPooling())
    model = PrototypicalTextClassifier(embedder)
    sampler = EpisodicSampler(n_support=2, n_query=2, n_episodes=3, n_classes=3, balance_query=True, seed=0)
    batches = list(sampler.sample(dataset.train))
    assert len(batches) == 3
    for batch in batches:
        pred, target = model(*batch)
        assert pred.shape == (6, 3) and target.shape == (6,)
        assert torch.equal(target, batch[1])  # episode labels 0..2 are already prototype positions
        assert math.isfinite(torch.nn.NLLLoss()(pred, target).item())
