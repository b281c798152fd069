"""Models that score an item by counting or weighting co-occurrences: popularity and two item-neighbourhood models.

They are cheap, need no iterations, and their item-item tables double as the "similar items" lists, which is why
the serving side keeps them around even when a factor or linear model wins the offline comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import Recommender
from .matrix import SparseProduct, gram, parallel_map, row_blocks, top_k_rows


class Popularity(Recommender):
    """Everyone gets the most-interacted items: the baseline a personalised model has to beat, and the answer for
    users without history.

    ``half_life_days`` is recorded with the run but not applied here: the caller already decays each interaction's
    weight by its age before building the matrix, so the column sums are time-weighted popularity.
    """

    name = "popularity"

    def __init__(self, *, half_life_days: float | None = None) -> None:
        self.half_life_days = half_life_days

    @property
    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def _fit(self, X: sp.csr_matrix) -> None:
        self.popularity = np.asarray(X.sum(axis=0), dtype=np.float32).ravel()

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), self.n_items)).copy()

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(items), self.n_items)).copy()


def _prune_rows(
    dense_rows: Callable[[int, int], np.ndarray], n_rows: int, n_cols: int, k: int, *, workers: int | None
) -> sp.csr_matrix:
    """Keep the ``k`` largest positive entries of each row of a matrix produced block by block by
    ``dense_rows(start, stop)``; the dense matrix never exists in full beyond the caller's own copy."""

    def one(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        block = dense_rows(*bounds)
        block[block <= 0] = -np.inf
        return top_k_rows(block, k)

    parts = parallel_map(one, row_blocks(n_rows, 1024), workers=workers)
    if not parts:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float32)
    idx = np.vstack([p[0] for p in parts])
    val = np.vstack([p[1] for p in parts])
    keep = idx >= 0
    counts = keep.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    W = sp.csr_matrix((val[keep], idx[keep], indptr), shape=(n_rows, n_cols), dtype=np.float32)
    W.sort_indices()
    return W


class ItemKNN(Recommender):
    """Item-based collaborative filtering with shrunk cosine similarity.

    For each item only its ``k`` most similar items vote for it: ``score(u, j) = sum of sim(i, j)`` over the items
    ``i`` the user has among ``j``'s neighbours. ``shrink`` damps similarities resting on few co-occurrences, which
    otherwise let two rarely-seen items look identical.
    """

    name = "itemknn"

    def __init__(self, *, k: int = 100, shrink: float = 10.0, workers: int | None = None) -> None:
        self.k = int(k)
        self.shrink = float(shrink)
        self.workers = workers

    @property
    def params(self) -> dict[str, Any]:
        return {"k": self.k, "shrink": self.shrink}

    def clone(self) -> ItemKNN:
        return ItemKNN(**self.params, workers=self.workers)

    def _fit(self, X: sp.csr_matrix) -> None:
        G = gram(X, workers=self.workers)
        norms = np.sqrt(np.diag(G)).astype(np.float32)
        n = G.shape[0]

        def cosine_rows(start: int, stop: int) -> np.ndarray:
            block = G[start:stop] / (np.outer(norms[start:stop], norms) + self.shrink + 1e-12)
            block[np.arange(stop - start), np.arange(start, stop)] = 0.0
            return block.astype(np.float32, copy=False)

        # Row i holds i's k nearest items; cosine is symmetric, so its transpose holds, per target item, the k
        # items allowed to vote for it.
        self._neighbours = _prune_rows(cosine_rows, n, n, self.k, workers=self.workers)
        # Voting per target item (rather than letting each item vote for its own k nearest) measured clearly
        # better on MovieLens: 0.154 against 0.137 validation NDCG@10.
        self._W = self._neighbours.T.tocsr()
        self._product = SparseProduct(self._W)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self._product(self.user_rows(users))

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return self._neighbours[items].toarray()


class RP3beta(Recommender):
    """Item-item random walk user -> item -> user -> item with popularity-penalised arrival (Paudel et al. 2017;
    the "RP3beta" of Dacrema et al.'s reproducibility study, where it stays competitive with far costlier models).

    Transition probabilities are raised to ``alpha``; the arrival item's popularity is divided out to the power
    ``beta``, which lifts the long tail that plain co-occurrence buries; each item keeps its ``k`` strongest links.
    """

    name = "rp3beta"

    def __init__(
        self, *, k: int = 200, alpha: float = 0.7, beta: float = 0.45, workers: int | None = None
    ) -> None:
        self.k = int(k)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.workers = workers

    @property
    def params(self) -> dict[str, Any]:
        return {"k": self.k, "alpha": self.alpha, "beta": self.beta}

    def clone(self) -> RP3beta:
        return RP3beta(**self.params, workers=self.workers)

    def _fit(self, X: sp.csr_matrix) -> None:
        n_items = X.shape[1]
        user_totals = np.asarray(X.sum(axis=1)).ravel()
        user_totals[user_totals == 0] = 1.0
        # P(item | user) ** alpha, and P(user | item) ** alpha with every user equally likely from an item.
        p_ui = sp.csr_matrix(sp.diags((1.0 / user_totals).astype(np.float32)) @ X)
        p_ui.data **= self.alpha
        binary = X.copy()
        binary.data[:] = 1.0
        popularity = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
        item_scale = np.zeros(n_items)
        item_scale[popularity > 0] = popularity[popularity > 0] ** -self.alpha
        arrival = np.zeros(n_items)
        arrival[popularity > 0] = popularity[popularity > 0] ** -self.beta
        W = gram(binary, right=p_ui, workers=self.workers)
        W *= item_scale.astype(np.float32)[:, None]
        W *= arrival.astype(np.float32)[None, :]
        np.fill_diagonal(W, 0.0)

        def rows(start: int, stop: int) -> np.ndarray:
            return W[start:stop].copy()

        self._W = _prune_rows(rows, n_items, n_items, self.k, workers=self.workers)
        self._product = SparseProduct(self._W)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self._product(self.user_rows(users))

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return self._W[items].toarray()
