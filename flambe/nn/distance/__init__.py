"""Distances between sets of vectors and the matching means (for prototypical networks).

``get_distance_module(name)`` and ``get_mean_module(name)`` build them from ``'euclidean'``,
``'cosine'`` or ``'hyperbolic'``.
"""

from __future__ import annotations

from flambe.nn.distance.cosine import CosineDistance, CosineMean
from flambe.nn.distance.distance import DistanceModule, MeanModule
from flambe.nn.distance.euclidean import EuclideanDistance, EuclideanMean
from flambe.nn.distance.hyperbolic import HyperbolicDistance, HyperbolicMean

_DISTANCES = {"euclidean": EuclideanDistance, "cosine": CosineDistance, "hyperbolic": HyperbolicDistance}
_MEANS = {"euclidean": EuclideanMean, "cosine": CosineMean, "hyperbolic": HyperbolicMean}


def _lookup(table: dict, metric: str) -> type:
    key = str(metric).lower()
    if key not in table:
        raise ValueError(f"Unknown distance '{metric}': choose one of {', '.join(table)}")
    return table[key]


def get_distance_module(metric: str) -> DistanceModule:
    """A new distance module for ``'euclidean'``, ``'cosine'`` or ``'hyperbolic'``.

    Raises
    ------
    ValueError
        For any other name.

    """
    return _lookup(_DISTANCES, metric)()


def get_mean_module(metric: str, detach_mean: bool = False) -> MeanModule:
    """A new mean module for ``'euclidean'``, ``'cosine'`` or ``'hyperbolic'``.

    Raises
    ------
    ValueError
        For any other name.

    """
    return _lookup(_MEANS, metric)(detach_mean=detach_mean)


__all__ = [
    "DistanceModule", "MeanModule", "EuclideanDistance", "EuclideanMean", "CosineDistance", "CosineMean",
    "HyperbolicDistance", "HyperbolicMean", "get_distance_module", "get_mean_module",
]
