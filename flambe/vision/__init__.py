"""Computer vision components: MNISTDataset and ImageClassifier."""

from flambe.vision.classification import ImageClassifier, MNISTDataset

__all__ = ["ImageClassifier", "MNISTDataset"]
