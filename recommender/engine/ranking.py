"""Turning scores into ranked lists: the step every evaluation and every nightly top-N shares."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Recommender
from .matrix import exclude_entries, parallel_map, row_blocks, top_k_rows


def top_n(
    model: Recommender,
    X_exclude: sp.spmatrix | sp.sparray,
    n: int,
    *,
    users: np.ndarray | None = None,
    block: int = 2048,
    allowed: np.ndarray | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best items for each of ``users`` (default: every row of ``X_exclude``), best first.

    Returns (int32 item indices, float32 scores), both (len(users), n). Never returns an item the user has in
    ``X_exclude`` (what they already own or have seen) or an item whose ``allowed`` flag is False (unpublished,
    not for sale); rows with fewer than ``n`` candidates end in index -1 with score 0.

    Users are scored in blocks of ``block`` rows on ``workers`` threads, so the dense score matrix never exists in
    full: 100,000 users x 10,000 items is 4 GB in float32, a block of 2,048 users is 80 MB.
    """
    X_exclude = sp.csr_matrix(X_exclude)
    users = np.arange(X_exclude.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    disallowed = None
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (X_exclude.shape[1],):
            raise ValueError(f"allowed has shape {allowed.shape}, expected ({X_exclude.shape[1]},)")
        disallowed = np.flatnonzero(~allowed)

    def one(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        chunk = users[bounds[0]:bounds[1]]
        scores = np.asarray(model.score(chunk), dtype=np.float32)
        if not (scores.flags.writeable and scores.flags.owndata):  # never write into a model's own arrays
            scores = scores.copy()
        exclude_entries(scores, X_exclude, chunk)
        if disallowed is not None and len(disallowed):
            scores[:, disallowed] = -np.inf
        return top_k_rows(scores, n)

    parts = parallel_map(one, row_blocks(len(users), block), workers=workers)
    if not parts:
        return np.zeros((0, n), dtype=np.int32), np.zeros((0, n), dtype=np.float32)
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
