"""Generic models."""

from flambe.model.logistic_regression import LogisticRegression

__all__ = ["LogisticRegression"]
