"""Holdout splits of an interaction matrix: which interactions a model may learn from, and which it is judged on.

Both splits work per user, so every evaluated user keeps most of their history for training; users with too few
interactions to spare one stay entirely in training.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .matrix import as_interactions


def _holdout_counts(lengths: np.ndarray, fraction: float, min_positives: int) -> np.ndarray:
    if not 0.0 < fraction < 1.0:
        raise ValueError("test_fraction must be between 0 and 1")
    counts = np.floor(fraction * lengths + 0.5).astype(np.int64)  # round half up, not to even
    counts = np.clip(counts, 1, np.maximum(lengths - 1, 1))
    counts[lengths < max(min_positives, 2)] = 0
    return counts


def _split_by_rank(X: sp.csr_matrix, rank: np.ndarray, counts: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out the entries whose within-row rank is below the row's holdout count."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    held = rank < counts[rows]

    def part(mask: np.ndarray) -> sp.csr_matrix:
        M = sp.csr_matrix((X.data[mask], X.indices[mask], np.concatenate([[0], np.cumsum(
            np.bincount(rows[mask], minlength=X.shape[0]))])), shape=X.shape, dtype=np.float32)
        return M

    return part(~held), part(held)


def _within_row_rank(X: sp.csr_matrix, key: np.ndarray) -> np.ndarray:
    """Each entry's position when its row is sorted by ``key`` ascending (ties by column)."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    order = np.lexsort((X.indices, key, rows))
    rank = np.empty(X.nnz, dtype=np.int64)
    rank[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    return rank


def split_per_user_random(
    X: sp.spmatrix, *, test_fraction: float = 0.2, seed: int = 0, min_positives: int = 2
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, test): for each user with at least ``min_positives`` interactions, a random ``test_fraction`` of them
    (rounded, at least one, never all) is held out."""
    X = as_interactions(X)
    rng = np.random.default_rng(seed)
    rank = _within_row_rank(X, rng.random(X.nnz))
    return _split_by_rank(X, rank, _holdout_counts(np.diff(X.indptr), test_fraction, min_positives))


def split_by_time(
    X: sp.spmatrix, timestamps: sp.spmatrix, *, test_fraction: float = 0.2, min_positives: int = 2
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, test): each user's latest ``test_fraction`` of interactions (by ``timestamps``, a matrix with the same
    stored entries as ``X`` holding seconds) is held out.

    Per-user rather than one global cutoff: a global cutoff leaves the many users who were inactive after it with
    nothing to evaluate and judges the model mostly on the heaviest recent users, while the per-user latest
    interactions ask the question the nightly job answers for everyone, "what does this user do next?".
    """
    X = as_interactions(X)
    T = sp.csr_matrix(timestamps, dtype=np.float64)
    if T.shape != X.shape:
        raise ValueError("timestamps must have the shape of X")
    T.sort_indices()
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    keys = rows * X.shape[1] + X.indices
    t_rows = np.repeat(np.arange(T.shape[0], dtype=np.int64), np.diff(T.indptr))
    t_keys = t_rows * T.shape[1] + T.indices
    pos = np.searchsorted(t_keys, keys)
    pos = np.minimum(pos, max(len(t_keys) - 1, 0))
    if len(keys) and (not len(t_keys) or not np.array_equal(t_keys[pos], keys)):
        raise ValueError("every stored entry of X needs a timestamp")
    when = T.data[pos] if len(keys) else np.zeros(0)
    rank = _within_row_rank(X, -when)  # latest first
    return _split_by_rank(X, rank, _holdout_counts(np.diff(X.indptr), test_fraction, min_positives))
