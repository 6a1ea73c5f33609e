"""Base classes: a distance between two sets of vectors, and the matching mean of one set."""

from __future__ import annotations

from torch import Tensor

from flambe.nn.module import Module


def check_pair(mat_1: Tensor, mat_2: Tensor) -> None:
    """Raise a ValueError unless both are ``[n x f]`` matrices with the same ``f``."""
    if mat_1.dim() != 2 or mat_2.dim() != 2 or mat_1.size(1) != mat_2.size(1):
        raise ValueError(f"distances take two matrices [n_1 x f] and [n_2 x f], got {list(mat_1.shape)} "
                         f"and {list(mat_2.shape)}")


class DistanceModule(Module):
    """A distance: forward(mat_1 ``[n_1 x f]``, mat_2 ``[n_2 x f]``) -> ``[n_1 x n_2]``.

    Subclasses implement :meth:`distance`; ``forward`` checks the shapes and calls it.
    """

    def forward(self, mat_1: Tensor, mat_2: Tensor) -> Tensor:
        """The distance between every row of ``mat_1`` and every row of ``mat_2``: ``[n_1 x n_2]``."""
        check_pair(mat_1, mat_2)
        return self.distance(mat_1, mat_2)

    def distance(self, mat_1: Tensor, mat_2: Tensor) -> Tensor:
        """Compute the ``[n_1 x n_2]`` distance matrix (shapes already checked)."""
        raise NotImplementedError(f"{type(self).__name__} must implement distance(mat_1, mat_2)")


class MeanModule(Module):
    """The mean of a set of vectors in some geometry: forward(data ``[n x f]``) -> ``[f]``.

    Each mean is the point that is "central" for the matching :class:`DistanceModule`, as prototypical
    networks need. Subclasses implement :meth:`mean`.

    Parameters
    ----------
    detach_mean : bool
        Detach the result from the graph (no gradient flows through the mean).

    """

    def __init__(self, detach_mean: bool = False) -> None:
        super().__init__()
        self.detach_mean = detach_mean

    def forward(self, data: Tensor) -> Tensor:
        """The mean of the rows of ``data`` ``[n x f]``: ``[f]``."""
        if data.dim() != 2 or data.size(0) == 0:
            raise ValueError(f"a mean takes a non-empty matrix [n x f], got shape {list(data.shape)}")
        mean = self.mean(data)
        return mean.detach() if self.detach_mean else mean

    def mean(self, data: Tensor) -> Tensor:
        """Compute the mean ``[f]`` of ``data`` ``[n x f]`` (shape already checked)."""
        raise NotImplementedError(f"{type(self).__name__} must implement mean(data)")
