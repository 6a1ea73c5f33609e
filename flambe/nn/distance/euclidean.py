"""Squared Euclidean distance and the arithmetic mean (its minimiser)."""

from __future__ import annotations

from torch import Tensor

from flambe.nn.distance.distance import DistanceModule, MeanModule


class EuclideanDistance(DistanceModule):
    """Squared Euclidean distance: ``d(x, y) = sum_j (x_j - y_j)^2``.

    forward(mat_1 ``[n_1 x f]``, mat_2 ``[n_2 x f]``) -> ``[n_1 x n_2]``.
    """

    def distance(self, mat_1: Tensor, mat_2: Tensor) -> Tensor:
        """``[n_1 x n_2]`` squared distances (computed from differences, so exact for close points)."""
        return (mat_1.unsqueeze(1) - mat_2.unsqueeze(0)).pow(2).sum(dim=-1)


class EuclideanMean(MeanModule):
    """The arithmetic mean, which minimises the sum of squared Euclidean distances.

    forward(data ``[n x f]``) -> ``[f]``.
    """

    def mean(self, data: Tensor) -> Tensor:
        """The arithmetic mean of the rows."""
        return data.mean(dim=0)
