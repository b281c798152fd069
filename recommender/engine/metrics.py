"""Offline ranking metrics, computed the way the literature the reference figures come from computes them.

Gains are binary (a held-out item is relevant, anything else is not), and both metrics are normalised by what a
perfect list of that length could reach, so a user with two held-out items is not penalised for the eight other
slots of a top-10.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import Recommender
from .matrix import as_interactions
from .ranking import top_n


def _hits(ranked: np.ndarray, test: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(bool (n_users, k) whether each ranked item is held out for its user, held-out count per user)."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or ranked.shape[0] != test.shape[0]:
        raise ValueError(f"ranked has shape {ranked.shape}, expected ({test.shape[0]}, >= {k})")
    if ranked.shape[1] < k:
        raise ValueError(f"ranked lists have {ranked.shape[1]} items, fewer than k={k}")
    n_items = test.shape[1]
    top = ranked[:, :k].astype(np.int64)
    rows = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr))
    keys = rows * n_items + test.indices  # sorted: CSR with sorted indices
    query = np.arange(test.shape[0], dtype=np.int64)[:, None] * n_items + top
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    hits = (keys[pos] == query) & (top >= 0) if len(keys) else np.zeros_like(top, dtype=bool)
    return hits, np.diff(test.indptr)


def ndcg_at_k(ranked: np.ndarray, test: sp.spmatrix, k: int = 10) -> float:
    """Mean NDCG@k over users with at least one held-out item: DCG = Σ 1/log2(rank + 1) over hits in the top k,
    divided by the DCG of min(k, |held out|) hits at the top. Row ``u`` of ``ranked`` lists user ``u``'s items."""
    test = as_interactions(test)
    hits, counts = _hits(ranked, test, k)
    users = counts > 0
    if not users.any():
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits.astype(np.float64) @ discounts
    ideal = np.cumsum(discounts)[np.minimum(counts, k) - 1]
    return float(np.mean(dcg[users] / ideal[users]))


def recall_at_k(ranked: np.ndarray, test: sp.spmatrix, k: int = 20) -> float:
    """Mean over users with held-out items of hits in the top k divided by min(k, |held out|)."""
    test = as_interactions(test)
    hits, counts = _hits(ranked, test, k)
    users = counts > 0
    if not users.any():
        return 0.0
    return float(np.mean(hits.sum(axis=1)[users] / np.minimum(counts[users], k)))


def coverage_at_k(ranked: np.ndarray, n_items: int, k: int = 10) -> float:
    """Share of the catalogue that appears in at least one user's top k."""
    top = np.asarray(ranked)[:, :k]
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else 0.0


def popularity_bias(ranked: np.ndarray, train: sp.csr_matrix, k: int = 10) -> float:
    """Mean training popularity (number of users with the item) of the recommended top-k items, divided by the mean
    popularity of a catalogue item: 1.0 recommends items as popular as the average item, popularity-ranking scores
    far above 1, a model that digs into the long tail scores below."""
    popularity = np.diff(train.tocsc().indptr).astype(np.float64)
    top = np.asarray(ranked)[:, :k]
    top = top[top >= 0]
    if not len(top) or popularity.mean() == 0:
        return 0.0
    return float(popularity[top].mean() / popularity.mean())


def evaluate(
    model: Recommender,
    train: sp.spmatrix,
    test: sp.spmatrix,
    *,
    k_ndcg: int = 10,
    k_recall: int = 20,
    users: np.ndarray | None = None,
    block: int = 2048,
    workers: int | None = None,
) -> dict[str, Any]:
    """Rank every item each user has no training interaction for, and score the lists against ``test``.

    ``users`` defaults to every user with a held-out item. Returns ``ndcg@{k_ndcg}``, ``recall@{k_recall}``,
    ``coverage@10``, ``popularity_bias`` (see :func:`popularity_bias`) and ``users`` (how many were evaluated).
    """
    train = as_interactions(train)
    test = as_interactions(test)
    if users is None:
        users = np.flatnonzero(np.diff(test.indptr) > 0)
    users = np.asarray(users, dtype=np.int64)
    depth = max(k_ndcg, k_recall, 10)
    ranked, _ = top_n(model, train, depth, users=users, block=block, workers=workers)
    held_out = test[users]
    return {
        f"ndcg@{k_ndcg}": ndcg_at_k(ranked, held_out, k_ndcg),
        f"recall@{k_recall}": recall_at_k(ranked, held_out, k_recall),
        "coverage@10": coverage_at_k(ranked, train.shape[1], 10),
        "popularity_bias": popularity_bias(ranked, train, 10),
        "users": int(len(users)),
    }
