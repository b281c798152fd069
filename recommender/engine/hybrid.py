"""A weighted blend of fitted models: what the nightly job serves when no single model wins outright.

Different models fail differently (the linear item model misses what the factor model generalises, and the
reverse), so a blend tuned on validation data beats each of its parts. Their raw scores live on unrelated scales
(EASE's around 1, ALS's around 0.1, a random walk's around 1e-4), so each component's scores are first normalised
per user, with statistics taken over the items the user does not have yet: those are the candidates, and the
scores of owned items (often the largest) would otherwise set the scale.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .base import Recommender
from .matrix import as_interactions

Normalisation = Literal["zscore", "max", "minmax"]


def normalise_rows(scores: np.ndarray, owned_rows: np.ndarray, owned_cols: np.ndarray, method: Normalisation) -> None:
    """Normalise each row of ``scores`` in place, computing the statistics without the ``(owned_rows[j],
    owned_cols[j])`` entries (all entries, owned ones included, are then transformed).

    ``zscore`` centres and scales by the standard deviation; ``max`` divides by the largest candidate score;
    ``minmax`` maps the candidates onto [0, 1]. On MovieLens the three blend within noise of each other; z-score is
    the default because it does not hang on a single extreme score.
    """
    n_rows, n_cols = scores.shape
    if n_rows == 0 or n_cols == 0:
        return
    owned_vals = scores[owned_rows, owned_cols].astype(np.float64)
    counts = n_cols - np.bincount(owned_rows, minlength=n_rows)
    counts = np.maximum(counts, 1)
    if method == "zscore":
        total = scores.sum(axis=1, dtype=np.float64) - np.bincount(owned_rows, weights=owned_vals, minlength=n_rows)
        squares = np.einsum("ij,ij->i", scores, scores, dtype=np.float64) - np.bincount(
            owned_rows, weights=owned_vals**2, minlength=n_rows)
        mean = total / counts
        var = np.maximum(squares / counts - mean**2, 0.0)
        std = np.sqrt(var)
        std[std == 0] = 1.0
        scores -= mean.astype(np.float32)[:, None]
        scores /= std.astype(np.float32)[:, None]
        return
    scores[owned_rows, owned_cols] = -np.inf
    high = scores.max(axis=1)
    if method == "minmax":
        scores[owned_rows, owned_cols] = np.inf
        low = scores.min(axis=1)
    else:
        low = np.zeros(n_rows, dtype=np.float32)
    scores[owned_rows, owned_cols] = owned_vals.astype(np.float32)
    high = np.where(np.isfinite(high), high, 0.0)
    low = np.where(np.isfinite(low), low, 0.0)
    span = (high - low).astype(np.float32)
    span[span <= 0] = 1.0
    scores -= low.astype(np.float32)[:, None]
    scores /= span[:, None]


class Hybrid(Recommender):
    """``score(u) = Σ weight_m · normalise(score_m(u))`` over fitted component models.

    ``fit`` fits every component on the same matrix; a selection that has already fitted the components blends
    them without refitting through :meth:`from_fitted`.
    """

    name = "hybrid"

    def __init__(self, components: list[tuple[Recommender, float]], *, normalise: Normalisation = "zscore") -> None:
        if not components:
            raise ValueError("a hybrid needs at least one component")
        if any(weight < 0 for _, weight in components):
            raise ValueError("component weights must be non-negative")
        self.components = [(model, float(weight)) for model, weight in components]
        self.normalise = normalise

    @classmethod
    def from_fitted(
        cls, components: list[tuple[Recommender, float]], X: sp.spmatrix, *, normalise: Normalisation = "zscore"
    ) -> Hybrid:
        """A hybrid of components already fitted on ``X`` (not refitted)."""
        hybrid = cls(components, normalise=normalise)
        hybrid._X = as_interactions(X)
        return hybrid

    @property
    def params(self) -> dict[str, Any]:
        return {
            "components": [{"model": model.name, "params": model.params, "weight": weight}
                           for model, weight in self.components],
            "normalise": self.normalise,
        }

    def clone(self) -> Hybrid:
        return Hybrid([(model.clone(), weight) for model, weight in self.components], normalise=self.normalise)

    def _fit(self, X: sp.csr_matrix) -> None:
        for model, _ in self.components:
            model.fit(X)

    def _blend(self, parts: list[np.ndarray], owned_rows: np.ndarray, owned_cols: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        for (_, weight), scores in zip(self.components, parts, strict=True):
            if weight == 0:
                continue
            scores = np.array(scores, dtype=np.float32, copy=True)
            normalise_rows(scores, owned_rows, owned_cols, self.normalise)
            if out is None:
                out = scores * np.float32(weight)
            else:
                out += np.float32(weight) * scores
        if out is None:
            out = np.zeros_like(parts[0], dtype=np.float32)
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        rows = self.user_rows(users)
        owned_rows = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
        parts = [model.score(users) if weight else None for model, weight in self.components]
        return self._blend([p if p is not None else np.zeros((len(users), self.n_items), np.float32)
                            for p in parts], owned_rows, rows.indices)

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        parts = [model.item_scores(items) if weight else np.zeros((len(items), self.n_items), np.float32)
                 for model, weight in self.components]
        return self._blend(parts, np.arange(len(items)), items)
