"""Datasets: train/val/test splits of examples, featurized by fields."""

from flambe.dataset.dataset import Dataset
from flambe.dataset.tabular import TabularDataset
from flambe.dataset.view import DataView

__all__ = ["Dataset", "TabularDataset", "DataView"]
