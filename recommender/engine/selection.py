"""Choosing the model a tenant is served: tune each candidate on a validation split, blend the best, keep the winner.

Every decision here (hyper-parameters, blend weights, the winner) is taken on ``valid`` only; the caller holds back
its own test split, or, in the nightly job, refits the winner on all data and compares it with the serving model.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .base import Recommender
from .hybrid import Hybrid, Normalisation, normalise_rows
from .linear import EASE
from .matrix import as_interactions, exclude_entries, row_blocks, top_k_rows
from .metrics import _hits, evaluate
from .registry import build_model

GridSize = Literal["full", "small", "none"]

DEFAULT_CANDIDATES = ["popularity", "itemknn", "rp3beta", "ease", "edlae", "als", "svd", "content"]

# Hyper-parameter grids per model. "none" uses the constructor defaults (one fit per model: the nightly job on a
# large tenant); "small" tries two or three values of what matters most; "full" is for benchmarks and small
# tenants. The ranges bracket the optima measured on MovieLens 100k; ALS's l2 and alpha move together (more
# confidence needs more regularisation), hence their joint grid.
GRIDS: dict[str, dict[str, dict[str, list[Any]]]] = {
    "popularity": {"small": {}, "full": {}},
    "itemknn": {
        "small": {"k": [50, 200], "shrink": [10.0]},
        "full": {"k": [25, 50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0]},
    },
    "rp3beta": {
        "small": {"k": [200], "alpha": [0.6, 1.0], "beta": [0.2, 0.4]},
        "full": {"k": [100, 200, 400], "alpha": [0.6, 0.8, 1.0], "beta": [0.3, 0.45, 0.6]},
    },
    "ease": {
        "small": {"l2": [100.0, 500.0, 2000.0]},
        "full": {"l2": [50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2500.0]},
    },
    "edlae": {
        "small": {"l2": [100.0, 300.0], "dropout": [0.5, 0.75]},
        "full": {"l2": [50.0, 100.0, 200.0, 400.0], "dropout": [0.5, 0.65, 0.8]},
    },
    "als": {
        "small": {"factors": [64], "alpha": [3.0, 10.0], "l2": [30.0, 60.0]},
        "full": {"factors": [64, 128], "alpha": [3.0, 10.0], "l2": [20.0, 30.0, 45.0, 60.0, 80.0]},
    },
    "svd": {
        "small": {"factors": [32, 128]},
        "full": {"factors": [16, 32, 48, 64, 96, 128, 192]},
    },
    "content": {"small": {}, "full": {"ngram_range": [[1, 3], [2, 4]]}},
}

# Blends grow greedily (see _choose_blend) up to this many components, with weights searched on a simplex grid of
# this step at each stage.
_HYBRID_COMPONENTS = {"full": 3, "small": 3, "none": 2}
_HYBRID_STEP = {"full": 0.1, "small": 0.25, "none": 0.25}


@dataclass
class Selection:
    """What :func:`select_model` found.

    ``results`` holds one row per candidate with its best parameters on validation (``model``, ``params``,
    ``ndcg@10``, ``recall@20``, ``coverage@10``, ``popularity_bias``, ``fit_s``), plus the hybrid's; ``best`` is the
    name with the highest validation NDCG@10; ``trials`` lists every configuration tried.
    """

    results: list[dict[str, Any]]
    best: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    item_texts: list[str] | None = field(default=None, repr=False)

    def result(self, name: str) -> dict[str, Any]:
        for row in self.results:
            if row["model"] == name:
                return row
        raise KeyError(name)

    def build(self, name: str | None = None) -> Recommender:
        """An unfitted model with the chosen parameters (the winner by default), to refit on all data; for the
        hybrid, a :class:`Hybrid` of unfitted components with the chosen weights."""
        row = self.result(name or self.best)
        return build_model(row["model"], row["params"], item_texts=self.item_texts)


def _param_grid(name: str, grid: GridSize, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    if grid == "none":
        return [dict(defaults)]
    space = GRIDS.get(name, {}).get(grid, {})
    if not space:
        return [dict(defaults)]
    keys = list(space)
    return [{**defaults, **dict(zip(keys, values, strict=True))} for values in itertools.product(*space.values())]


def _simplex(n: int, step: float) -> list[tuple[float, ...]]:
    """Weight vectors on the simplex with the given step, each component's weight a multiple of ``step``."""
    units = round(1 / step)
    out = []
    for combo in itertools.product(range(units + 1), repeat=n):
        if sum(combo) == units:
            out.append(tuple(c / units for c in combo))
    return out


def _ndcg_rows(ranked: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    hits, counts = _hits(ranked, test, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.clip(np.minimum(counts, k) - 1, 0, None)]
    return (hits.astype(np.float64) @ discounts) / ideal


class _BlendScorer:
    """Validation NDCG@10 of weighted blends of fitted models, for the weight search.

    Each model's normalised scores for the validation users are computed once and kept while they fit in
    ``budget_bytes`` (always, on MovieLens-sized data); above that they are recomputed per user block, trading
    time for a bounded footprint on large tenants.
    """

    def __init__(
        self,
        train: sp.csr_matrix,
        valid: sp.csr_matrix,
        users: np.ndarray,
        normalise: Normalisation,
        *,
        block: int = 1024,
        budget_bytes: int = 256 * 2**20,
    ) -> None:
        self.train, self.users, self.normalise = train, users, normalise
        self.blocks = row_blocks(len(users), block)
        self.held_out = [valid[users[a:b]] for a, b in self.blocks]
        self.owned = []
        for a, b in self.blocks:
            rows = train[users[a:b]]
            self.owned.append((np.repeat(np.arange(b - a), np.diff(rows.indptr)), rows.indices))
        self.cacheable = len(users) * train.shape[1] * 4
        self.budget = budget_bytes
        self.cache: dict[int, list[np.ndarray]] = {}

    def _scores(self, model: Recommender, j: int) -> np.ndarray:
        cached = self.cache.get(id(model))
        if cached is not None:
            return cached[j]
        a, b = self.blocks[j]
        scores = np.array(model.score(self.users[a:b]), dtype=np.float32, copy=True)
        normalise_rows(scores, *self.owned[j], self.normalise)
        return scores

    def prepare(self, models: list[Recommender]) -> None:
        for model in models:
            if id(model) not in self.cache and self.cacheable * (len(self.cache) + 1) <= self.budget:
                self.cache[id(model)] = [self._scores(model, j) for j in range(len(self.blocks))]

    def search(
        self, models: list[Recommender], weights: list[tuple[float, ...]]
    ) -> tuple[tuple[float, ...], np.ndarray]:
        """The weight vector with the best mean NDCG@10 (ties: the earlier vector), and its per-user NDCG@10."""
        self.prepare(models)
        per_user = np.zeros((len(weights), len(self.users)))
        for j, (a, b) in enumerate(self.blocks):
            parts = [self._scores(model, j) for model in models]
            chunk = self.users[a:b]
            for i, w in enumerate(weights):
                blend = np.zeros_like(parts[0])
                for part, weight in zip(parts, w, strict=True):
                    if weight:
                        blend += np.float32(weight) * part
                exclude_entries(blend, self.train, chunk)
                ranked, _ = top_k_rows(blend, 10)
                per_user[i, a:b] = _ndcg_rows(ranked, self.held_out[j], 10)
        best = int(np.argmax(per_user.mean(axis=1)))
        return weights[best], per_user[best]


def _choose_blend(
    scorer: _BlendScorer, pool: list[tuple[str, Recommender]], *, max_components: int, step: float
) -> tuple[list[str], tuple[float, ...]]:
    """Greedy forward selection of blend components (Caruana et al. 2004): start from the best single model and
    add, one at a time, whichever remaining model most improves validation NDCG@10 with re-searched weights.

    A component is added only when the improvement is at least one standard error of the paired per-user
    differences: a validation split holds a handful of items per user, and on MovieLens a blend that wins by less
    than that on validation loses as often as it wins on test. Greedy selection (rather than taking the top few by
    their own score) prefers a model that fails differently over a near-copy of one already in.
    """
    singles = {name: scorer.search([model], [(1.0,)])[1] for name, model in pool}
    order = sorted(pool, key=lambda entry: -singles[entry[0]].mean())
    chosen = [order[0]]
    weights: tuple[float, ...] = (1.0,)
    current = singles[order[0][0]]
    while len(chosen) < min(max_components, len(pool)):
        best: tuple[float, tuple[float, ...], np.ndarray, tuple[str, Recommender]] | None = None
        for entry in order:
            if entry in chosen:
                continue
            models = [e[1] for e in chosen] + [entry[1]]
            w, per_user = scorer.search(models, _simplex(len(models), step))
            if best is None or per_user.mean() > best[0]:
                best = (per_user.mean(), w, per_user, entry)
        if best is None:
            break
        diff = best[2] - current
        standard_error = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.inf
        if not diff.mean() > max(standard_error, 1e-9):
            break
        weights, current = best[1], best[2]
        chosen.append(best[3])
    return [e[0] for e in chosen], weights


def select_model(
    train: sp.spmatrix,
    valid: sp.spmatrix,
    *,
    candidates: list[str] | None = None,
    item_texts: list[str] | None = None,
    max_eval_users: int | None = None,
    seed: int = 0,
    grid: GridSize = "full",
    normalise: Normalisation = "zscore",
    workers: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Selection:
    """Fit every candidate on ``train`` over its parameter grid, keep each one's best by NDCG@10 on ``valid``, then
    blend the best personalised models with weights chosen on ``valid``.

    ``candidates`` defaults to every registered model; the hybrid is built when ``candidates`` is None or names
    it. EASE variants are skipped above ``EASE.MAX_ITEMS`` items (a dense items x items inverse) and the content
    model without ``item_texts``. ``max_eval_users`` evaluates a random sample of the validation users (seeded by
    ``seed``), which bounds the cost of each of the many evaluations on a large tenant. ``log``, if given, is
    called with one line per trial.
    """
    train = as_interactions(train)
    valid = as_interactions(valid)
    if train.shape != valid.shape:
        raise ValueError("train and valid must have the same shape")
    n_items = train.shape[1]
    names = list(DEFAULT_CANDIDATES if candidates is None else candidates)
    want_hybrid = candidates is None or "hybrid" in candidates
    if n_items > EASE.MAX_ITEMS:
        names = [n for n in names if n not in ("ease", "edlae")]
    if item_texts is None:
        names = [n for n in names if n != "content"]
    names = [n for n in names if n != "hybrid"]
    if not names:
        raise ValueError("no candidate models left to compare")

    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if max_eval_users is not None and len(users) > max_eval_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_eval_users, replace=False))

    results: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    fitted: dict[str, Recommender] = {}
    for name in names:
        defaults = dict(build_model(name, {}, item_texts=item_texts).params)
        if "seed" in defaults:
            defaults["seed"] = seed
        best_row: dict[str, Any] | None = None
        for params in _param_grid(name, grid, defaults):
            model = build_model(name, params, item_texts=item_texts)
            if workers is not None and hasattr(model, "workers"):
                model.workers = workers
            started = time.perf_counter()
            model.fit(train)
            fit_s = time.perf_counter() - started
            metrics = evaluate(model, train, valid, users=users, workers=workers)
            row = {"model": name, "params": model.params, "ndcg@10": metrics["ndcg@10"],
                   "recall@20": metrics["recall@20"], "coverage@10": metrics["coverage@10"],
                   "popularity_bias": metrics["popularity_bias"], "fit_s": fit_s}
            trials.append(row)
            if log:
                log(f"{name} {model.params} ndcg@10={row['ndcg@10']:.4f} recall@20={row['recall@20']:.4f} "
                    f"fit={fit_s:.2f}s")
            if best_row is None or (row["ndcg@10"], row["recall@20"]) > (best_row["ndcg@10"], best_row["recall@20"]):
                best_row = row
                fitted[name] = model
            else:
                del model
        assert best_row is not None
        results.append(best_row)

    pool = [(r["model"], fitted[r["model"]]) for r in results if r["model"] != "popularity"]
    if want_hybrid and pool and len(users):
        scorer = _BlendScorer(train, valid, users, normalise)
        names_chosen, weights = _choose_blend(scorer, pool, max_components=_HYBRID_COMPONENTS[grid],
                                                 step=_HYBRID_STEP[grid])
        components = [(fitted[n], w) for n, w in zip(names_chosen, weights, strict=True) if w > 0]
        hybrid = Hybrid.from_fitted(components, train, normalise=normalise)
        metrics = evaluate(hybrid, train, valid, users=users, workers=workers)
        fit_s = sum(r["fit_s"] for r in results if any(r["model"] == n for n in names_chosen))
        row = {"model": "hybrid", "params": hybrid.params, "ndcg@10": metrics["ndcg@10"],
               "recall@20": metrics["recall@20"], "coverage@10": metrics["coverage@10"],
               "popularity_bias": metrics["popularity_bias"], "fit_s": fit_s}
        results.append(row)
        trials.append(row)
        if log:
            log(f"hybrid {row['params']} ndcg@10={row['ndcg@10']:.4f} recall@20={row['recall@20']:.4f}")
    best = max(results, key=lambda r: (r["ndcg@10"], r["recall@20"]))["model"]
    return Selection(results=results, best=best, trials=trials, item_texts=item_texts)
