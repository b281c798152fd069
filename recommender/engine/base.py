"""The interface every model of the engine implements.

A model is fitted on one interaction matrix (users x items, implicit-feedback weights) and then answers two
questions in dense blocks: how much each of some users would want every item (``score``), and which items go with
each item (``similar_items``). The nightly job ranks with :func:`recommender.engine.ranking.top_n`, which removes
what a user already has, so models score every item and never filter.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from .matrix import as_interactions, parallel_map, row_blocks, top_k_rows


class NotFittedError(RuntimeError):
    pass


class Recommender(abc.ABC):
    """Base class: subclasses set ``name``, take their hyper-parameters as keyword arguments, and implement
    ``_fit``, ``score`` and ``item_scores``.

    ``params`` must round-trip through JSON and the constructor (``type(m)(**m.params)`` is an unfitted twin),
    because the nightly job stores the winner's parameters with the run and the selection rebuilds models from
    them to refit on all data.
    """

    name: ClassVar[str]

    _X: sp.csr_matrix | None = None

    def fit(self, X: sp.spmatrix | sp.sparray) -> Self:
        self._X = as_interactions(X)
        self._fit(self._X)
        return self

    @abc.abstractmethod
    def _fit(self, X: sp.csr_matrix) -> None: ...

    @abc.abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each of ``users``: float32 (len(users), n_items); higher is better."""

    @abc.abstractmethod
    def item_scores(self, items: np.ndarray) -> np.ndarray:
        """How strongly each of ``items`` points to every item: float32 (len(items), n_items). The value for the
        item itself is ignored by ``similar_items``."""

    @property
    @abc.abstractmethod
    def params(self) -> dict[str, Any]: ...

    def clone(self) -> Self:
        """An unfitted model with the same hyper-parameters."""
        return type(self)(**self.params)

    # -- shared behaviour -------------------------------------------------------------------------------------

    @property
    def X(self) -> sp.csr_matrix:
        if self._X is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted")
        return self._X

    @property
    def n_users(self) -> int:
        return self.X.shape[0]

    @property
    def n_items(self) -> int:
        return self.X.shape[1]

    def similar_items(self, n: int, *, block: int = 1024, workers: int | None = None,
                      allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items closest to each item, best first, never the item itself: (int32 (n_items, n), float32
        (n_items, n)); index -1 and score 0 pad rows with fewer than ``n`` related items (zero or negative
        relatedness does not count as related).

        With ``allowed``, items whose flag is False (not for sale) are never a neighbour, so they cannot take the
        places of items that could be shown; they still get neighbours of their own.
        """
        n_items = self.n_items
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n_items,):
                raise ValueError(f"allowed has shape {allowed.shape}, expected ({n_items},)")

        def one(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            items = np.arange(*bounds)
            s = np.asarray(self.item_scores(items), dtype=np.float32)
            s[np.arange(len(items)), items] = -np.inf
            s[s <= 0] = -np.inf
            if allowed is not None:
                s[:, ~allowed] = -np.inf
            return top_k_rows(s, n)

        parts = parallel_map(one, row_blocks(n_items, block), workers=workers)
        if not parts:
            return np.zeros((0, n), dtype=np.int32), np.zeros((0, n), dtype=np.float32)
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def user_rows(self, users: np.ndarray) -> sp.csr_matrix:
        return self.X[np.asarray(users, dtype=np.int64)]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
