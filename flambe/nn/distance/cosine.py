"""Cosine distance and the mean direction (its minimiser)."""

from __future__ import annotations

from torch import Tensor

from flambe.nn.distance.distance import DistanceModule, MeanModule


def unit_rows(data: Tensor, eps: float) -> Tensor:
    """Each row divided by its Euclidean norm (norms below ``eps`` count as ``eps``)."""
    return data / data.norm(dim=-1, keepdim=True).clamp(min=eps)


class CosineDistance(DistanceModule):
    """Cosine distance: ``d(x, y) = 1 - x.y / (|x| |y|)``, in ``[0, 2]``.

    Parameters
    ----------
    eps : float
        Norms below ``eps`` are replaced by ``eps`` (a zero vector is at distance 1 from everything).

    Notes
    -----
    forward(mat_1 ``[n_1 x f]``, mat_2 ``[n_2 x f]``) -> ``[n_1 x n_2]``.

    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def distance(self, mat_1: Tensor, mat_2: Tensor) -> Tensor:
        """``[n_1 x n_2]`` cosine distances."""
        return 1 - unit_rows(mat_1, self.eps) @ unit_rows(mat_2, self.eps).t()


class CosineMean(MeanModule):
    """The mean direction: the normalised mean of the unit-normalised rows.

    It is the unit vector minimising the sum of cosine distances to the rows (it maximises
    ``sum_i cos(x_i, m)``), so the lengths of the inputs do not weigh in.

    Parameters
    ----------
    detach_mean : bool
        See :class:`MeanModule`.

    Notes
    -----
    forward(data ``[n x f]``) -> ``[f]`` with norm 1 (zeros if the directions cancel out exactly).

    """

    def mean(self, data: Tensor) -> Tensor:
        """The unit mean direction of the rows."""
        return unit_rows(unit_rows(data, 1e-8).mean(dim=0), 1e-8)
