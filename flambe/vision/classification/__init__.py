"""Image classification: the MNIST dataset and ImageClassifier."""

from flambe.vision.classification.datasets import MNISTDataset
from flambe.vision.classification.model import ImageClassifier

__all__ = ["MNISTDataset", "ImageClassifier"]
