"""Few-shot text classification."""

from flambe.nlp.fewshot.model import PrototypicalTextClassifier

__all__ = ["PrototypicalTextClassifier"]
