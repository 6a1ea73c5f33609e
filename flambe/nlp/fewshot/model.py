"""PrototypicalTextClassifier: few-shot classification by distance to class prototypes."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from flambe.nlp.classification.model import first_output
from flambe.nn.distance import get_distance_module, get_mean_module
from flambe.nn.module import Module


class PrototypicalTextClassifier(Module):
    """A prototypical network (Snell et al., 2017) over text encodings.

    Each class is represented by the mean (in the chosen geometry) of the encodings of its support
    examples; a query is classified by a softmax over its negative distances to the prototypes.

    Parameters
    ----------
    embedder : Module
        Maps ``[B x S]`` ids to one vector per example ``[B x H]`` (an ``(output, state)`` result is accepted).
    distance : str
        ``'euclidean'``, ``'cosine'`` or ``'hyperbolic'``: the distance and the matching mean.
    detach_mean : bool
        Stop gradients through the prototypes.

    Attributes
    ----------
    prototypes : Tensor or None
        The prototypes ``[C x H]`` set by the last :meth:`compute_prototypes` call (not saved).
    classes : Tensor or None
        The labels of those prototypes, sorted (prediction column ``j`` is class ``classes[j]``).

    Notes
    -----
    ``forward(query, query_label, support, support_label)`` takes its arguments in the order of the
    ``EpisodicSampler``'s batches, so a ``Trainer`` can call ``model(*batch)``.

    """

    def __init__(self, embedder: Module, distance: str = "euclidean", detach_mean: bool = False) -> None:
        super().__init__()
        self.embedder = embedder
        self.distance = distance
        self.detach_mean = detach_mean
        self.distance_module = get_distance_module(distance)
        self.mean_module = get_mean_module(distance, detach_mean=detach_mean)
        self.prototypes: Optional[Tensor] = None
        self.classes: Optional[Tensor] = None

    def _encode(self, data: Tensor) -> Tensor:
        return first_output(self.embedder(data))

    def compute_prototypes(self, support: Tensor, label: Tensor) -> Tensor:
        """Set (and return) the prototypes: one mean encoding per distinct label.

        Parameters
        ----------
        support : Tensor
            Support encodings ``[N x H]``.
        label : Tensor
            Their labels ``[N]``.

        Returns
        -------
        Tensor
            ``[C x H]``, row ``j`` for the ``j``-th smallest distinct label (stored in :attr:`classes`).

        """
        if support.dim() != 2 or label.dim() != 1 or support.size(0) != label.size(0):
            raise ValueError(f"compute_prototypes expects encodings [N x H] and labels [N], got "
                             f"{list(support.shape)} and {list(label.shape)}")
        classes = torch.unique(label, sorted=True)
        prototypes = torch.stack([self.mean_module(support[label == c]) for c in classes])
        self.prototypes, self.classes = prototypes, classes
        return prototypes

    def forward(self, query: Tensor, query_label: Optional[Tensor] = None, support: Optional[Tensor] = None,
                support_label: Optional[Tensor] = None,
                prototypes: Optional[Tensor] = None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Classify the queries against prototypes.

        The prototypes are, in order of precedence: ``prototypes`` if given (row ``j`` is class ``j``),
        those computed from ``support``/``support_label`` if given, else those of the last
        :meth:`compute_prototypes` call.

        Parameters
        ----------
        query : Tensor
            Query ids ``[Q x S]``.
        query_label : Tensor, optional
            Query labels ``[Q]``; returned as positions among the prototype classes.
        support : Tensor, optional
            Support ids ``[N x S]``.
        support_label : Tensor, optional
            Support labels ``[N]`` (required with ``support``).
        prototypes : Tensor, optional
            Precomputed prototypes ``[C x H]``.

        Returns
        -------
        Union[Tensor, Tuple[Tensor, Tensor]]
            Log-probabilities ``[Q x C]``, or ``(log-probabilities, target [Q])`` with a query label.

        """
        classes: Optional[Tensor]
        if prototypes is not None:
            classes = None
        elif support is not None:
            if support_label is None:
                raise ValueError("support_label is required when support is given")
            prototypes = self.compute_prototypes(self._encode(support), support_label)
            classes = self.classes
        elif self.prototypes is not None:
            prototypes, classes = self.prototypes, self.classes
        else:
            raise ValueError("No prototypes: pass support and support_label, or prototypes, "
                             "or call compute_prototypes first")
        encoding = self._encode(query)
        scores = -self.distance_module(encoding, prototypes.to(encoding.device))
        pred = torch.log_softmax(scores, dim=-1)
        if query_label is None:
            return pred
        if classes is None:
            return pred, query_label
        classes = classes.to(query_label.device)
        target = torch.searchsorted(classes, query_label).clamp(max=classes.numel() - 1)
        missing = classes[target] != query_label
        if bool(missing.any()):
            raise ValueError(f"Query labels {query_label[missing].unique().tolist()} have no support examples "
                             f"(support classes: {classes.tolist()})")
        return pred, target
