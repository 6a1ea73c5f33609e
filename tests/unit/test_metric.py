"""Unit tests for flambe.metric: hand-computed values, input shapes, losses, and exact aggregation."""

from __future__ import annotations

import math

import pytest
import torch

import flambe
from flambe.compile import yaml
from flambe.metric import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    BinaryMetric,
    BinaryPrecision,
    BinaryRecall,
    Metric,
    MultiLabelCrossEntropy,
    MultiLabelNLLLoss,
    Perplexity,
)

LN2 = math.log(2.0)


# ---------------------------------------------------------------------- Accuracy
def test_accuracy_of_scores_against_ids():
    pred = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.0, 0.1, 0.9], [0.3, 0.4, 0.3]])
    target = torch.tensor([1, 2, 2, 0])  # arg-max is [1, 0, 2, 1]: 2 of 4 right
    assert Accuracy().compute(pred, target).item() == pytest.approx(0.5)
    assert Accuracy()(pred, target).dim() == 0


def test_accuracy_one_hot_targets_labels_and_sequences():
    pred = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    one_hot = torch.tensor([[1, 0], [1, 0], [1, 0]])
    assert Accuracy()(pred, one_hot).item() == pytest.approx(2 / 3)
    assert Accuracy()(torch.tensor([1, 0, 2]), torch.tensor([1, 1, 2])).item() == pytest.approx(2 / 3)
    assert Accuracy()(torch.tensor([1.0, 0.0]), torch.tensor([1, 1])).item() == pytest.approx(0.5)
    # [B x S x C] scores for [B x S] ids: every position counts once (3 of 4 right).
    seq = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.7, 0.3]]])
    assert Accuracy()(seq, torch.tensor([[0, 1], [0, 1]])).item() == pytest.approx(0.75)


def test_accuracy_rejects_ambiguous_inputs():
    with pytest.raises(ValueError, match="not integral"):
        Accuracy()(torch.tensor([0.2, 0.9]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="cannot compare"):
        Accuracy()(torch.tensor([1, 0, 1]), torch.tensor([1, 0]))


# ---------------------------------------------------------------------- AUC
def test_auc_matches_the_pairwise_count():
    # Positives 0.35, 0.8; negatives 0.1, 0.4: 3 of 4 pairs are ordered right.
    pred, target = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])
    assert AUC()(pred, target).item() == pytest.approx(0.75)
    # [N x 2] scores use column 1.
    two = torch.stack([1 - pred, pred], dim=1)
    assert AUC()(two, target).item() == pytest.approx(0.75)


def test_auc_counts_ties_as_half():
    # Positives 0.9, 0.5; negatives 0.5, 0.1: pairs 1 + 1 + 0.5 (tie) + 1 = 3.5 of 4.
    pred, target = torch.tensor([0.9, 0.5, 0.5, 0.1]), torch.tensor([1, 1, 0, 0])
    assert AUC()(pred, target).item() == pytest.approx(0.875)


def test_partial_auc_is_mcclish_standardized():
    pred, target = torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])
    # ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1): area up to fpr .5 is .5 * .5 = .25;
    # standardized: .5 * (1 + (.25 - .125) / (.5 - .125)) = 2/3.
    assert AUC(max_fpr=0.5)(pred, target).item() == pytest.approx(2 / 3)
    # Up to .25: area .125 -> .5 * (1 + (.125 - .03125) / (.25 - .03125)).
    assert AUC(max_fpr=0.25)(pred, target).item() == pytest.approx(0.5 * (1 + 0.09375 / 0.21875))
    # A tie makes a diagonal segment (0,.5)->(.5,1), interpolated at .25 to tpr .75:
    # area .25 * (.5 + .75) / 2 = .15625.
    tied, tied_target = torch.tensor([0.9, 0.5, 0.5, 0.1]), torch.tensor([1, 1, 0, 0])
    expected = 0.5 * (1 + (0.15625 - 0.03125) / 0.21875)
    assert AUC(max_fpr=0.25)(tied, tied_target).item() == pytest.approx(expected)
    # A perfect classifier is 1.0 at any max_fpr.
    assert AUC(max_fpr=0.3)(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])).item() == pytest.approx(1.0)


def test_auc_errors():
    with pytest.raises(ValueError, match="one class"):
        AUC()(torch.tensor([0.2, 0.8]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="max_fpr"):
        AUC(max_fpr=0.0)
    with pytest.raises(ValueError, match="0 or 1"):
        AUC()(torch.tensor([0.2, 0.8]), torch.tensor([0, 2]))


# ---------------------------------------------------------------------- binary metrics
PRED = torch.tensor([0.9, 0.2, 0.6, 0.4, 0.5])
GOLD = torch.tensor([1, 0, 0, 1, 1])  # predicted at 0.5: [1, 0, 1, 0, 1]


def test_binary_accuracy_precision_recall_by_hand():
    assert BinaryAccuracy()(PRED, GOLD).item() == pytest.approx(3 / 5)
    assert BinaryPrecision()(PRED, GOLD).item() == pytest.approx(2 / 3)  # predicted {0,2,4}, right {0,4}
    assert BinaryRecall()(PRED, GOLD).item() == pytest.approx(2 / 3)  # actual {0,3,4}, found {0,4}
    # Threshold 0.55: predicted [1, 0, 1, 0, 0].
    assert BinaryPrecision(threshold=0.55)(PRED, GOLD).item() == pytest.approx(1 / 2)
    assert BinaryRecall(threshold=0.55)(PRED, GOLD).item() == pytest.approx(1 / 3)
    # Label 0 as the positive class: predicted 0 at {1,3}, actual 0 at {1,2}, both at {1}.
    assert BinaryPrecision(positive_label=0)(PRED, GOLD).item() == pytest.approx(1 / 2)
    assert BinaryRecall(positive_label=0)(PRED, GOLD).item() == pytest.approx(1 / 2)
    # [N x 2] probabilities use column 1.
    two = torch.stack([1 - PRED, PRED], dim=1)
    assert BinaryAccuracy()(two, GOLD).item() == pytest.approx(3 / 5)


def test_precision_and_recall_with_no_positive_are_zero():
    assert BinaryPrecision()(torch.tensor([0.1, 0.2]), torch.tensor([1, 0])).item() == 0.0
    assert BinaryRecall()(torch.tensor([0.9, 0.2]), torch.tensor([0, 0])).item() == 0.0


def test_binary_metric_names_and_base():
    assert str(BinaryPrecision()) == "BinaryPrecision"
    assert str(BinaryRecall(threshold=0.7, positive_label=0)) == "BinaryRecall_t0.7_label0"
    assert str(AUC(max_fpr=0.1)) == "AUC_fpr0.1"
    assert str(Accuracy()) == "Accuracy"
    with pytest.raises(NotImplementedError):
        BinaryMetric()(PRED, GOLD)
    with pytest.raises(ValueError, match="positive_label"):
        BinaryPrecision(positive_label=2)


# ---------------------------------------------------------------------- perplexity
def test_perplexity_by_hand_with_ignored_tokens():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5], [0.1, 0.1, 0.8]])
    target = torch.tensor([0, 1, 0])
    # NLL of the first two tokens: ln 2 and ln 4 -> perplexity exp(1.5 ln 2) = 2 ** 1.5
    assert Perplexity(ignore_index=0)(probs.log(), torch.tensor([1, 1, 0])).item() == pytest.approx(4.0)
    assert Perplexity()(probs[:2].log(), target[:2]).item() == pytest.approx(2 ** 1.5)
    # Logits give the same as log-probabilities (the log-softmax leaves log-probs unchanged).
    logits = probs[:2].log() + torch.tensor([[3.0], [-1.0]])
    assert Perplexity()(logits, target[:2]).item() == pytest.approx(2 ** 1.5)
    # [B x S x C] with [B x S] targets; the padding id 2 is left out.
    seq = probs.log().unsqueeze(0).expand(2, 3, 3)
    seq_target = torch.tensor([[0, 1, 2], [0, 1, 2]])
    assert Perplexity(ignore_index=2)(seq, seq_target).item() == pytest.approx(2 ** 1.5)
    with pytest.raises(ValueError, match="no token"):
        Perplexity(ignore_index=2)(probs.log(), torch.tensor([2, 2, 2]))


# ---------------------------------------------------------------------- multi-label losses
def test_multilabel_nll_formula_by_hand():
    log_probs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]).log()
    target = torch.tensor([[1, 0, 1], [1, 0, 0]])
    # row 0: q = [.5, 0, .5] -> .5 ln 2 + .5 ln 4 = 1.5 ln 2; row 1: q = [1, 0, 0] -> ln 2
    assert MultiLabelNLLLoss()(log_probs, target).item() == pytest.approx(1.25 * LN2)
    assert MultiLabelNLLLoss(reduction="sum")(log_probs, target).item() == pytest.approx(2.5 * LN2)
    none = MultiLabelNLLLoss(reduction="none")(log_probs, target)
    assert none.tolist() == pytest.approx([1.5 * LN2, LN2])
    # weights [1, 2, 3]: row 0 -> .5 * 1 * ln 2 + .5 * 3 * ln 4 = 3.5 ln 2; row 1 -> ln 2
    weighted = MultiLabelNLLLoss(weight=[1.0, 2.0, 3.0], reduction="none")(log_probs, target)
    assert weighted.tolist() == pytest.approx([3.5 * LN2, LN2])
    # ignore class 0: row 0 becomes q = [0, 0, 1] -> ln 4; row 1 has no class left: loss 0
    ignored = MultiLabelNLLLoss(ignore_index=0, reduction="none")(log_probs, target)
    assert ignored.tolist() == pytest.approx([2 * LN2, 0.0])


def test_multilabel_losses_match_torch_on_single_labels_and_soft_targets():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    ids = torch.tensor([0, 3, 1, 1, 2, 0])
    expected = torch.nn.functional.cross_entropy(logits, ids)
    assert MultiLabelCrossEntropy()(logits, ids).item() == pytest.approx(expected.item(), rel=1e-6)
    log_probs = torch.log_softmax(logits, dim=1)
    assert MultiLabelNLLLoss()(log_probs, ids).item() == pytest.approx(
        torch.nn.functional.nll_loss(log_probs, ids).item(), rel=1e-6)
    multi_hot = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]])
    soft = multi_hot.float() / multi_hot.sum(1, keepdim=True)
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5])
    torch_value = torch.nn.functional.cross_entropy(logits, soft, weight=weight)  # probability targets
    assert MultiLabelCrossEntropy(weight=weight)(logits, multi_hot).item() == pytest.approx(torch_value.item(),
                                                                                          rel=1e-6)


def test_multilabel_losses_are_differentiable():
    logits = torch.zeros(2, 4, requires_grad=True)
    target = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1]])
    loss = MultiLabelCrossEntropy()(logits, target)
    loss.backward()
    # d/dlogits of mean_i -sum_c q_ic log_softmax_ic = (softmax - q) / N; softmax is uniform (.25)
    expected = (torch.full((2, 4), 0.25) - torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0, 1.0]])) / 2
    assert torch.allclose(logits.grad, expected)
    assert MultiLabelNLLLoss(reduction="none")(logits, target).requires_grad
    with pytest.raises(ValueError, match="reduction"):
        MultiLabelNLLLoss(reduction="avg")


# ---------------------------------------------------------------------- aggregation
def _cases():
    torch.manual_seed(1)
    n = 23
    scores = torch.rand(n)
    scores[5] = scores[6]  # a tie across batches
    labels = (torch.rand(n) < 0.5).long()
    labels[0], labels[1] = 0, 1
    class_scores = torch.randn(n, 5)
    class_ids = torch.randint(0, 5, (n,))
    multi_hot = (torch.rand(n, 5) < 0.4).long()
    seq_logits = torch.randn(n, 7, 6)
    seq_ids = torch.randint(0, 6, (n, 7))
    return [
        (Accuracy(), class_scores, class_ids),
        (AUC(), scores, labels),
        (AUC(max_fpr=0.3), scores, labels),
        (BinaryAccuracy(), scores, labels),
        (BinaryPrecision(threshold=0.4), scores, labels),
        (BinaryRecall(positive_label=0), scores, labels),
        (Perplexity(ignore_index=0), seq_logits, seq_ids),
        (MultiLabelNLLLoss(weight=[1.0, 2.0, 1.0, 0.5, 1.0]), torch.log_softmax(class_scores, 1), multi_hot),
        (MultiLabelCrossEntropy(ignore_index=1), class_scores, multi_hot),
        (MultiLabelCrossEntropy(reduction="sum"), class_scores, multi_hot),
    ]


@pytest.mark.parametrize("index", range(10))
def test_aggregating_three_uneven_batches_equals_compute_on_all(index):
    metric, pred, target = _cases()[index]
    state = None
    for start, end in ((0, 4), (4, 15), (15, 23)):
        state = metric.aggregate(state, pred[start:end], target[start:end])
    assert isinstance(state, dict)
    value = metric.finalize(state)
    assert isinstance(value, float)
    assert value == pytest.approx(metric.compute(pred, target).item(), rel=1e-5)


def test_base_metric_weighted_mean_and_errors():
    class MeanTarget(Metric):
        def compute(self, pred, target):
            return target.float().mean()

    metric = MeanTarget()
    state = metric.aggregate(None, torch.zeros(1), torch.tensor([1.0]))
    state = metric.aggregate(state, torch.zeros(3), torch.tensor([0.0, 0.0, 2.0]))
    assert metric.finalize(state) == pytest.approx(3 / 4)  # a mean of batch means would say 0.83
    with pytest.raises(ValueError, match="no batch"):
        metric.finalize(None)
    with pytest.raises(NotImplementedError):
        Metric()(torch.zeros(1), torch.zeros(1))


def test_metrics_build_from_yaml_and_round_trip(tmp_path):
    built = yaml.load("!BinaryPrecision {threshold: 0.3, positive_label: 0}")()
    assert isinstance(built, BinaryPrecision) and built.threshold == 0.3 and built.positive_label == 0
    loss = MultiLabelCrossEntropy(weight=torch.tensor([1.0, 3.0]), ignore_index=0, reduction="sum")
    flambe.save(loss, str(tmp_path / "loss"))
    loaded = flambe.load(str(tmp_path / "loss"))
    assert isinstance(loaded, MultiLabelCrossEntropy)
    assert torch.equal(loaded.weight, torch.tensor([1.0, 3.0]))
    assert (loaded.ignore_index, loaded.reduction) == (0, "sum")
    logits, target = torch.tensor([[0.3, -0.2]]), torch.tensor([[1, 1]])
    assert loaded(logits, target).item() == pytest.approx(loss(logits, target).item())
