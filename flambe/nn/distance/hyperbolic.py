"""Hyperbolic (Poincaré-ball) distance and mean, for features given in Euclidean coordinates.

Encoders output unconstrained vectors, so both modules read their inputs as tangent vectors at the
origin of the Poincaré ball (curvature -1) and place them in the ball with the exponential map
``exp_0(v) = tanh(|v|) v / |v|``. Along a ray from the origin this doubles lengths exactly:
``d(0, exp_0(v)) = 2 |v|``.

* :class:`HyperbolicDistance` is the Poincaré distance between the mapped points,
  ``d(x, y) = arcosh(1 + 2 |x - y|^2 / ((1 - |x|^2)(1 - |y|^2)))``.
* :class:`HyperbolicMean` is the Einstein midpoint (Ungar; Gulcehre et al., 2019): the mapped points
  are moved to the Klein model, averaged with weights given by their Lorentz factors, moved back to
  the ball, and returned through the logarithmic map ``log_0`` in the same Euclidean coordinates as
  the inputs, so the mean can be fed to :class:`HyperbolicDistance` like any other feature vector.
  For two points it is the midpoint of the geodesic between them.

Points are kept at norm ``<= 1 - EPSILON`` inside the ball, so inputs with ``|v|`` above about 6 are
saturated (they all sit near the boundary and get no gradient through the map).
"""

from __future__ import annotations

import torch
from torch import Tensor

from flambe.nn.distance.distance import DistanceModule, MeanModule

EPSILON = 1e-5
_MIN_NORM = 1e-15


def arccosh(x: Tensor) -> Tensor:
    """``arcosh(x)`` for ``x >= 1``, written as ``log1p(u + sqrt(u (u + 2)))`` with ``u = x - 1``.

    This keeps precision near ``x = 1`` (small distances) and a finite gradient at ``x = 1``.
    """
    u = (x - 1).clamp(min=0)
    return torch.log1p(u + (u * (u + 2)).clamp(min=1e-12).sqrt())


def project(x: Tensor) -> Tensor:
    """Pull points with norm above ``1 - EPSILON`` back inside the ball (same direction)."""
    norm = x.norm(dim=-1, keepdim=True).clamp(min=_MIN_NORM)
    return torch.where(norm > 1 - EPSILON, x / norm * (1 - EPSILON), x)


def exp_map_zero(v: Tensor) -> Tensor:
    """The exponential map at the origin: tangent vectors ``[* x f]`` -> points of the ball."""
    norm = v.norm(dim=-1, keepdim=True).clamp(min=_MIN_NORM)
    return project(torch.tanh(norm) * v / norm)


def log_map_zero(y: Tensor) -> Tensor:
    """The logarithmic map at the origin (inverse of :func:`exp_map_zero`): ball -> tangent vectors."""
    y = project(y)
    norm = y.norm(dim=-1, keepdim=True).clamp(min=_MIN_NORM)
    return torch.atanh(norm) * y / norm


def dist(x: Tensor, y: Tensor) -> Tensor:
    """Poincaré distance between points of the ball, broadcasting over leading dimensions: ``[*]``."""
    x, y = project(x), project(y)
    sq_diff = (x - y).pow(2).sum(dim=-1)
    denom = (1 - x.pow(2).sum(dim=-1)) * (1 - y.pow(2).sum(dim=-1))
    return arccosh(1 + 2 * sq_diff / denom)


def pairwise_dist(mat_1: Tensor, mat_2: Tensor) -> Tensor:
    """Poincaré distances between every point of ``mat_1`` ``[n_1 x f]`` and of ``mat_2`` ``[n_2 x f]``."""
    return dist(mat_1.unsqueeze(1), mat_2.unsqueeze(0))


def poincare_to_klein(p: Tensor) -> Tensor:
    """Poincaré ball -> Klein model: ``2 p / (1 + |p|^2)``."""
    return 2 * p / (1 + p.pow(2).sum(dim=-1, keepdim=True))


def klein_to_poincare(k: Tensor) -> Tensor:
    """Klein model -> Poincaré ball: ``k / (1 + sqrt(1 - |k|^2))``."""
    return k / (1 + (1 - k.pow(2).sum(dim=-1, keepdim=True)).clamp(min=0).sqrt())


def lorentz_factor(k: Tensor) -> Tensor:
    """``1 / sqrt(1 - |k|^2)`` for points ``[* x f]`` of the Klein model: ``[* x 1]``."""
    return 1 / (1 - k.pow(2).sum(dim=-1, keepdim=True)).clamp(min=EPSILON).sqrt()


def einstein_midpoint(k: Tensor) -> Tensor:
    """The Einstein midpoint of Klein points ``[n x f]``: ``sum_i g_i k_i / sum_i g_i`` -> ``[f]``."""
    gamma = lorentz_factor(k)
    return (gamma * k).sum(dim=0) / gamma.sum(dim=0)


class HyperbolicDistance(DistanceModule):
    """Poincaré-ball distance between feature vectors mapped into the ball with ``exp_0``.

    forward(mat_1 ``[n_1 x f]``, mat_2 ``[n_2 x f]``) -> ``[n_1 x n_2]`` (see the module notes).
    """

    def distance(self, mat_1: Tensor, mat_2: Tensor) -> Tensor:
        """``[n_1 x n_2]`` hyperbolic distances."""
        return pairwise_dist(exp_map_zero(mat_1), exp_map_zero(mat_2))


class HyperbolicMean(MeanModule):
    """The Einstein midpoint of feature vectors mapped into the ball, mapped back with ``log_0``.

    forward(data ``[n x f]``) -> ``[f]``, in the same coordinates as the inputs (see the module notes).
    """

    def mean(self, data: Tensor) -> Tensor:
        """The hyperbolic mean of the rows."""
        klein = poincare_to_klein(exp_map_zero(data))
        return log_map_zero(klein_to_poincare(einstein_midpoint(klein)))
