"""EASE: a full-rank linear item-item model with a closed-form fit (Steck 2019), and its dropout-regularised form.

On implicit-feedback benchmarks it matches or beats far costlier models; its price is a dense items x items
inverse, so the nightly job skips it above :data:`EASE.MAX_ITEMS` items.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .base import Recommender
from .matrix import gram, single_threaded_blas

# Below this many items the factorisation takes milliseconds and BLAS threads only add hand-offs (on a busy
# machine, spinning threads made a 1,700-item fit take seconds).
_THREADED_FROM = 4096

# Column tiles of the weight matrix for scoring: ``sparse @ dense`` streams one row of the dense operand per stored
# entry, and a tile a few thousand columns wide stays in cache where a full 10,000-wide row does not (about four
# times faster at 10,000 items).
_TILE = 1024


def spd_inverse_inplace(A: np.ndarray, *, block: int = 2048) -> np.ndarray:
    """Invert the symmetric positive-definite float32 matrix ``A`` in place (Cholesky, then LAPACK ``potri``).

    About a third of the work of a general inverse and no float64 copy: at 10,000 items that is a few seconds and
    400 MB instead of a minute and 1.6 GB.
    """
    if A.dtype != np.float32 or not A.flags.c_contiguous:
        raise ValueError("expects a C-contiguous float32 matrix")
    n = A.shape[0]
    # A is symmetric, so its transpose view is the same matrix in the Fortran order LAPACK works in, and LAPACK
    # then writes into A's own memory. "Upper" in Fortran order is the lower triangle of the C-ordered array.
    with single_threaded_blas() if n < _THREADED_FROM else nullcontext():
        factor, info = lapack.spotrf(A.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise np.linalg.LinAlgError(f"matrix is not positive definite (potrf info={info}); raise the l2 penalty")
        inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"inverse failed (potri info={info})")
    if not np.shares_memory(inverse, A):
        A[...] = inverse.T
    # Only the lower triangle (in C order) holds the inverse: mirror it, block by block to avoid a second copy.
    for start in range(0, n, block):
        stop = min(start + block, n)
        A[start:stop, stop:] = A[stop:, start:stop].T
        diag_block = A[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        diag_block[upper] = diag_block.T[upper]
    return A


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: ``B = argmin ||X - XB||² + l2·||B||²`` with ``diag(B) = 0``, solved in
    closed form as ``B = I - P / diag(P)``, ``P = (XᵀX + Λ)⁻¹``.

    ``dropout`` > 0 gives the emphasised denoising variant (EDLAE, Steck 2020): training the same model on inputs
    with each interaction dropped with probability ``p`` adds ``p/(1-p)·diag(XᵀX)`` to the penalty, so popular
    items are regularised more; on MovieLens it is worth a point or two of NDCG over plain EASE.
    """

    name = "ease"
    MAX_ITEMS = 15_000

    def __init__(self, *, l2: float = 500.0, dropout: float = 0.0, workers: int | None = None) -> None:
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        self.l2 = float(l2)
        self.dropout = float(dropout)
        self.workers = workers

    @property
    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "dropout": self.dropout}

    def clone(self) -> EASE:
        return type(self)(**self.params, workers=self.workers)

    def _fit(self, X: sp.csr_matrix) -> None:
        G = gram(X, workers=self.workers)
        penalty = np.full(G.shape[0], self.l2, dtype=np.float32)
        if self.dropout:
            penalty += np.float32(self.dropout / (1.0 - self.dropout)) * np.diag(G)
        G[np.diag_indices_from(G)] += penalty
        P = spd_inverse_inplace(G)
        scale = (-1.0 / np.diag(P)).astype(np.float32)
        P *= scale[None, :]
        np.fill_diagonal(P, 0.0)
        n = P.shape[0]
        self._tiles = [np.ascontiguousarray(P[:, start:start + _TILE]) for start in range(0, n, _TILE)]

    @property
    def B(self) -> np.ndarray:
        """The item-item weight matrix (a copy; its diagonal is zero)."""
        return np.hstack(self._tiles)

    def score(self, users: np.ndarray) -> np.ndarray:
        rows = self.user_rows(users)
        out = np.empty((rows.shape[0], self.n_items), dtype=np.float32)
        start = 0
        for tile in self._tiles:
            out[:, start:start + tile.shape[1]] = rows @ tile
            start += tile.shape[1]
        return out

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        return np.hstack([tile[items] for tile in self._tiles])


class EDLAE(EASE):
    """EASE with dropout emphasis on by default (see :class:`EASE`); registered separately so that the selection
    reports both, and a tenant's run shows whether the extra regulariser paid off."""

    name = "edlae"

    def __init__(self, *, l2: float = 200.0, dropout: float = 0.5, workers: int | None = None) -> None:
        super().__init__(l2=l2, dropout=dropout, workers=workers)

