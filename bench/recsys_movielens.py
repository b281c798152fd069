"""Offline accuracy of the recommender engine on MovieLens 100k, through the production code path.

    ./zhiku bench recsys_movielens [--data PATH] [--seeds 0 1 2] [--grid full|small|none]
    python bench/recsys_movielens.py [same options]

It runs exactly what the nightly job runs per tenant (``select_model`` -> ``Selection.build`` -> ``fit`` ->
``evaluate`` from ``recommender.engine``), not a separate implementation, on a public data set whose published
results give the figures something to be measured against.

Protocol (the usual one for implicit-feedback top-N on this data set):

1. Data: ``u.data`` of MovieLens 100k (tab-separated user, item, rating, timestamp), read from
   ``../shared/data/movielens-100k/u.data`` next to the project (``--data`` to point elsewhere; the file is never
   copied into the project). Ratings >= 4 are positives (binary weights); users with fewer than 5 positives are
   dropped; the catalogue is every item of the file.
2. For each seed (0, 1, 2): a per-user random 80/20 split of the positives into train and test.
3. Hyper-parameters, and the hybrid's components and weights, are chosen on a validation split that holds out
   10 % of each user's *training* positives (``select_model(train_minus_valid, valid, grid="full")``); the test
   split is never looked at until the end.
4. Every model is refitted with its chosen parameters on the whole training part and evaluated on test, ranking
   every item the user has no training positive for: NDCG@10 with binary gains and the ideal DCG over
   min(10, |test|) items, Recall@20 = hits / min(20, |test|), coverage@10 (share of the catalogue in someone's
   top 10), and the refit's seconds.

It prints a table (mean ± std over the seeds per model, and the parameters chosen per seed) and ends with one
JSON line per model (means over seeds): first the extra models the engine also has, then popularity, itemknn,
ease, als, svd and hybrid, in that order.

Published figures on this protocol (mean over seeds 0-2), for comparison: popularity NDCG@10 0.150, item-kNN
0.287, user-kNN 0.291, RP3beta 0.291, PureSVD 0.299, implicit ALS 0.317 (Recall@20 0.399), SLIM 0.318, EASE
0.318 (Recall@20 0.389).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(PROJECT))

from recommender.engine import evaluate, select_model, split_per_user_random  # noqa: E402

DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "movielens-100k" / "u.data"
REQUIRED = ["popularity", "itemknn", "ease", "als", "svd", "hybrid"]
METRICS = ["ndcg@10", "recall@20", "coverage@10", "fit_s"]


def load_positives(path: Path, *, min_rating: int = 4, min_positives: int = 5) -> sp.csr_matrix:
    """Users x items binary matrix of ratings >= ``min_rating``, keeping users with ``min_positives`` or more."""
    data = np.loadtxt(path, dtype=np.int64, delimiter="\t", usecols=(0, 1, 2))
    _, items = np.unique(data[:, 1], return_inverse=True)
    n_items = int(items.max()) + 1
    positive = data[:, 2] >= min_rating
    user_ids, users = np.unique(data[positive, 0], return_inverse=True)
    X = sp.csr_matrix((np.ones(int(positive.sum()), dtype=np.float32), (users, items[positive])),
                      shape=(len(user_ids), n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X[np.diff(X.indptr) >= min_positives]


def run_seed(X: sp.csr_matrix, seed: int, *, grid: str, verbose: bool) -> tuple[dict[str, dict[str, Any]], str]:
    train, test = split_per_user_random(X, test_fraction=0.2, seed=seed)
    # A different stream for the validation draw, so it is not correlated with the test draw.
    fit_part, valid = split_per_user_random(train, test_fraction=0.1, seed=seed + 10_000)
    started = time.perf_counter()
    selection = select_model(fit_part, valid, grid=grid, seed=seed,
                             log=(lambda line: print(f"    {line}", flush=True)) if verbose else None)
    print(f"  seed {seed}: selection on validation took {time.perf_counter() - started:.1f} s; "
          f"best on validation: {selection.best}", flush=True)
    out: dict[str, dict[str, Any]] = {}
    for row in selection.results:
        model = selection.build(row["model"])
        started = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - started
        metrics = evaluate(model, train, test)
        out[row["model"]] = {**metrics, "fit_s": fit_s, "params": row["params"], "valid_ndcg@10": row["ndcg@10"]}
    return out, selection.best


def describe(params: dict[str, Any]) -> str:
    if "components" in params:
        return " + ".join(f"{c['weight']:.2f}·{c['model']}({describe(c['params'])})" for c in params["components"])
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("seed", "iterations", "cg_steps"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path of MovieLens 100k u.data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--grid", choices=["full", "small", "none"], default="full")
    parser.add_argument("--verbose", action="store_true", help="print every configuration tried")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"MovieLens 100k not found at {args.data} (use --data)")

    X = load_positives(args.data)
    print(f"MovieLens 100k: {X.shape[0]} users, {X.shape[1]} items, {X.nnz} positives (rating >= 4, users with "
          f">= 5); seeds {args.seeds}; grid {args.grid}", flush=True)
    started = time.perf_counter()
    per_seed: list[dict[str, dict[str, Any]]] = []
    winners = []
    for seed in args.seeds:
        results, best = run_seed(X, seed, grid=args.grid, verbose=args.verbose)
        per_seed.append(results)
        winners.append(best)

    names = [n for n in per_seed[0] if n not in REQUIRED] + [n for n in REQUIRED if n in per_seed[0]]
    print()
    print(f"{'model':<11} {'NDCG@10':>16} {'Recall@20':>16} {'coverage@10':>16} {'fit s':>13} {'valid NDCG':>11}")
    summary: dict[str, dict[str, float]] = {}
    for name in names:
        rows = [seed_results[name] for seed_results in per_seed]
        summary[name] = {m: float(np.mean([r[m] for r in rows])) for m in METRICS}
        cells = [f"{np.mean([r[m] for r in rows]):.4f} ± {np.std([r[m] for r in rows]):.4f}" for m in METRICS[:3]]
        fit = f"{np.mean([r['fit_s'] for r in rows]):.2f} ± {np.std([r['fit_s'] for r in rows]):.2f}"
        valid = np.mean([r["valid_ndcg@10"] for r in rows])
        print(f"{name:<11} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {fit:>13} {valid:>11.4f}")
    print()
    print("Parameters chosen on validation, and each seed's test figures:")
    for name in names:
        for seed, seed_results in zip(args.seeds, per_seed, strict=True):
            r = seed_results[name]
            print(f"  {name:<11} seed {seed}: NDCG@10 {r['ndcg@10']:.4f}  Recall@20 {r['recall@20']:.4f}  "
                  f"{describe(r['params'])}")
    print(f"Best on validation per seed: {', '.join(winners)}. Total {time.perf_counter() - started:.0f} s.")
    print()
    for name in names:
        print(json.dumps({"model": name, **{m: round(summary[name][m], 4) for m in METRICS}}))


if __name__ == "__main__":
    main()
