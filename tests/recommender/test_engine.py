"""The recommender's numerical core: metrics, ranking, models, splits and selection, on small matrices.

Plain functions without the database: the engine imports no Django.
"""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import (
    ALS,
    EASE,
    EDLAE,
    MODEL_CLASSES,
    ContentModel,
    Hybrid,
    ItemKNN,
    Popularity,
    PureSVD,
    RP3beta,
    build_model,
    evaluate,
    ndcg_at_k,
    recall_at_k,
    select_model,
    split_by_time,
    split_per_user_random,
    top_n,
)
from recommender.engine.matrix import top_k_rows


def random_matrix(n_users=60, n_items=40, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n_users, n_items, density=density, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = 1.0 + rng.integers(0, 3, X.nnz)
    return X


def block_clusters(n_users=240, n_items=60, clusters=4, p_in=0.5, p_out=0.02, seed=0):
    """Users of cluster c mostly use the items of cluster c; item popularity is flat across clusters."""
    rng = np.random.default_rng(seed)
    user_cluster = np.arange(n_users) % clusters
    item_cluster = np.arange(n_items) % clusters
    p = np.where(user_cluster[:, None] == item_cluster[None, :], p_in, p_out)
    return sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(np.float32))


# -- metrics -------------------------------------------------------------------------------------------------


def test_metrics_match_hand_computed_values():
    ranked = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3], [-1, -1, -1, -1]])
    # user 0 holds out items 1 and 3, user 1 item 3, user 2 nothing (not averaged), user 3 item 0 (no list).
    test = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32))

    # NDCG@3. User 0: one hit at rank 2 -> DCG = 1/log2(3); ideal: two hits -> 1 + 1/log2(3).
    # User 1: hit at rank 1 -> 1/1 = 1. User 3: padding is never a hit -> 0.
    user0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, test, k=3) == pytest.approx((user0 + 1.0 + 0.0) / 3)
    # At k=4 user 0 also hits at rank 4: DCG = 1/log2(3) + 1/log2(5), same ideal (two held-out items).
    user0_at4 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, test, k=4) == pytest.approx((user0_at4 + 1.0) / 3)

    # Recall@k = hits / min(k, |held out|): user 0 has 1 of min(3, 2) = 2, user 1 has 1 of 1, user 3 has 0 of 1.
    assert recall_at_k(ranked, test, k=3) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # At k=1: user 0 gets item 0 (a miss) -> 0 / min(1, 2); user 1 gets item 3 -> 1 / 1.
    assert recall_at_k(ranked, test, k=1) == pytest.approx((0.0 + 1.0 + 0.0) / 3)


def test_metrics_reject_short_lists():
    with pytest.raises(ValueError):
        ndcg_at_k(np.zeros((2, 3), dtype=int), sp.csr_matrix((2, 5)), k=10)


def test_evaluate_reports_the_documented_keys():
    X = random_matrix()
    train, test = split_per_user_random(X, seed=1)
    result = evaluate(Popularity().fit(train), train, test)
    assert set(result) == {"ndcg@10", "recall@20", "coverage@10", "popularity_bias", "users"}
    assert result["users"] == int((np.diff(test.indptr) > 0).sum())
    # Popularity recommends the most popular items: far more popular than the average catalogue item.
    assert result["popularity_bias"] > 1.0


# -- ranking -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Popularity(), ItemKNN(k=10), ALS(factors=4, iterations=3)])
def test_top_n_never_returns_owned_or_disallowed_items(model):
    X = random_matrix(density=0.3)
    model.fit(X)
    allowed = np.ones(X.shape[1], dtype=bool)
    allowed[[0, 5, 7]] = False
    idx, scores = top_n(model, X, 15, allowed=allowed, block=16)
    assert idx.shape == scores.shape == (X.shape[0], 15)
    assert idx.dtype == np.int32 and scores.dtype == np.float32
    for user in range(X.shape[0]):
        items = idx[user][idx[user] >= 0]
        assert not set(items) & set(X[user].indices)
        assert not set(items) & {0, 5, 7}
        assert len(set(items)) == len(items)


@pytest.mark.parametrize("model", [ItemKNN(k=10), EASE(l2=10.0), ALS(factors=4, iterations=3)])
def test_similar_items_never_lists_a_disallowed_item_and_fills_its_places(model):
    X = random_matrix(density=0.3)
    model.fit(X)
    allowed = np.ones(X.shape[1], dtype=bool)
    allowed[:10] = False
    everything, _ = model.similar_items(8)
    idx, scores = model.similar_items(8, allowed=allowed)
    assert idx.shape == scores.shape == (X.shape[1], 8)
    assert not set(idx.ravel().tolist()) & set(range(10))
    # A row's length is what the allowed items give, not what is left after cutting the disallowed ones out.
    for row, full in zip(idx, everything, strict=True):
        assert (row >= 0).sum() >= (full >= 10).sum()
    # Disallowed items still have neighbours of their own.
    assert (idx[:10] >= 0).any()
    with pytest.raises(ValueError):
        model.similar_items(8, allowed=allowed[:-1])


def test_top_n_pads_with_minus_one_when_candidates_run_out():
    X = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    model = Popularity().fit(X)
    idx, scores = top_n(model, X, 4, allowed=np.array([True, True, True, True, False]))
    # User 0 owns items 0-2 and item 4 is not allowed: only item 3 is left.
    assert idx[0].tolist() == [3, -1, -1, -1]
    assert scores[0, 1:].tolist() == [0.0, 0.0, 0.0]
    assert idx[1].tolist() == [0, 1, 2, 3]
    # Subsets of users keep the caller's order; without the filter, item 4 (one user) ranks above item 3 (none).
    idx_sub, _ = top_n(model, X, 2, users=np.array([1, 0]))
    assert idx_sub.tolist() == [[0, 1], [4, 3]]


@pytest.mark.parametrize(("shape", "k"), [((64, 3000), 20), ((64, 3000), 100), ((30, 300), 10), ((5, 7), 10)])
def test_top_k_rows_matches_a_full_sort(shape, k):
    rng = np.random.default_rng(1)
    scores = rng.random(shape, dtype=np.float32).round(2)  # plenty of ties
    scores[rng.random(shape) < 0.3] = -np.inf
    scores[0] = -np.inf
    scores[1, 2] = np.nan
    idx, val = top_k_rows(scores, k)
    for row in range(shape[0]):
        finite = np.flatnonzero(np.isfinite(scores[row]))
        expected = finite[np.lexsort((finite, -scores[row][finite]))][:k]  # best first, ties by column
        assert idx[row, :len(expected)].tolist() == expected.tolist()
        assert (idx[row, len(expected):] == -1).all() and (val[row, len(expected):] == 0).all()
        np.testing.assert_array_equal(val[row, :len(expected)], scores[row][expected])


def test_top_n_orders_by_score():
    X = random_matrix(density=0.2)
    model = EASE(l2=10.0).fit(X)
    idx, scores = top_n(model, X, 10)
    assert np.all(np.diff(scores, axis=1) <= 0)
    full = model.score(np.arange(X.shape[0]))
    np.testing.assert_allclose(np.take_along_axis(full, idx.astype(np.int64), axis=1), scores, rtol=1e-6)


# -- models --------------------------------------------------------------------------------------------------


def all_models(texts):
    return [Popularity(), ItemKNN(k=10), RP3beta(k=10), EASE(l2=5.0), EDLAE(l2=5.0, dropout=0.3),
            ALS(factors=8, iterations=5), PureSVD(factors=5), ContentModel(texts),
            Hybrid([(EASE(l2=5.0), 0.5), (ALS(factors=8, iterations=5), 0.5)])]


def test_model_registry_names():
    assert {"popularity", "itemknn", "ease", "als", "svd", "content", "hybrid"} <= set(MODEL_CLASSES)
    for name, cls in MODEL_CLASSES.items():
        assert cls.name == name


def test_every_model_fits_and_scores_with_the_right_shapes():
    X = random_matrix()
    texts = [f"item {i} topic {i % 4}" for i in range(X.shape[1])]
    for model in all_models(texts):
        assert model.fit(X) is model
        users = np.array([0, 3, 5])
        scores = model.score(users)
        assert scores.shape == (3, X.shape[1]), model
        assert scores.dtype == np.float32, model
        assert np.isfinite(scores).all(), model
        idx, sim = model.similar_items(5)
        assert idx.shape == sim.shape == (X.shape[1], 5), model
        assert idx.dtype == np.int32 and sim.dtype == np.float32
        assert not (idx == np.arange(X.shape[1])[:, None]).any(), f"{model} lists an item as its own neighbour"
        assert (sim[idx < 0] == 0).all()
        # The parameters are JSON and rebuild an equivalent, unfitted model.
        params = json.loads(json.dumps(model.params))
        twin = build_model(model.name, params, item_texts=texts)
        assert twin.params == model.params


def test_ease_diagonal_is_zero_and_weights_reconstruct():
    X = random_matrix(density=0.25)
    model = EASE(l2=2.0).fit(X)
    B = model.B
    assert B.shape == (X.shape[1], X.shape[1])
    assert B.dtype == np.float32
    assert np.all(np.diag(B) == 0)
    # The closed form against a float64 reference solve.
    G = (X.T @ X).toarray().astype(np.float64) + 2.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    expected = -P / np.diag(P)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(B, expected, atol=1e-4)
    np.testing.assert_allclose(model.score(np.arange(5)), X[:5] @ expected, atol=1e-3)


def test_edlae_penalises_popular_items_more():
    X = random_matrix(density=0.25)
    plain, dropout = EASE(l2=2.0).fit(X), EASE(l2=2.0, dropout=0.5).fit(X)
    assert np.all(np.diag(dropout.B) == 0)
    assert np.abs(dropout.B).sum() < np.abs(plain.B).sum()
    assert EDLAE().name == "edlae" and EDLAE().dropout > 0


def test_als_conjugate_gradient_agrees_with_exact_solves():
    X = random_matrix(n_users=80, n_items=50, density=0.2)
    cg = ALS(factors=6, l2=1.0, alpha=5.0, iterations=20, cg_steps=3).fit(X)
    exact = ALS(factors=6, l2=1.0, alpha=5.0, iterations=20, cg_steps=0).fit(X)
    a, b = cg.score(np.arange(80)), exact.score(np.arange(80))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_models_beat_popularity_on_clustered_data():
    X = block_clusters()
    train, test = split_per_user_random(X, seed=3)
    baseline = evaluate(Popularity().fit(train), train, test)["ndcg@10"]
    for model in (ItemKNN(k=20), RP3beta(k=20), EASE(l2=10.0), ALS(factors=8, l2=1.0), PureSVD(factors=4)):
        assert evaluate(model.fit(train), train, test)["ndcg@10"] > baseline + 0.1, model


# -- content -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("texts", [
    ["Python data analysis for beginners", "Hands-on data analysis: processing tables with Python",
     "Foundations of classical piano performance"],
    ["Python 数据分析入门", "数据分析实战：用 Python 处理表格", "古典钢琴演奏基础"],
    ["Python 数据分析入门", "数据分析实战：用表格处理数据", "古典钢琴演奏基础"],  # no shared Latin word
])
def test_content_model_ranks_same_topic_above_unrelated(texts):
    X = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))  # one learner who took the first course
    model = ContentModel(texts).fit(X)
    scores = model.score(np.array([0]))[0]
    assert scores[1] > scores[2]
    idx, sim = model.similar_items(2)
    assert idx[0, 0] == 1 and idx[1, 0] == 0
    assert sim[0, 0] > 0


def test_content_model_needs_one_text_per_item():
    with pytest.raises(ValueError):
        ContentModel(["only one"]).fit(sp.csr_matrix(np.ones((1, 2), dtype=np.float32)))


# -- splits --------------------------------------------------------------------------------------------------


def test_split_per_user_random_partitions_each_user():
    X = random_matrix(density=0.3)
    train, test = split_per_user_random(X, test_fraction=0.2, seed=4)
    assert (train.multiply(test)).nnz == 0
    assert abs(train + test - X).max() == 0
    for user in range(X.shape[0]):
        n = X[user].nnz
        if n >= 2:
            assert test[user].nnz == max(1, math.floor(0.2 * n + 0.5))
            assert train[user].nnz >= 1
    again, _ = split_per_user_random(X, test_fraction=0.2, seed=4)
    assert (again != train).nnz == 0


def test_split_by_time_holds_out_each_users_latest_interactions():
    X = sp.csr_matrix(np.array([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 1, 0, 0]], dtype=np.float32))
    when = sp.csr_matrix(np.array([[50, 10, 40, 20, 30], [5, 0, 9, 0, 0], [0, 0, 7, 0, 0]], dtype=np.float64))
    train, test = split_by_time(X, when, test_fraction=0.4)
    # User 0: 40 % of 5 = 2 latest (t=50 on item 0, t=40 on item 2); user 1: 1 latest (item 2 at t=9);
    # user 2 has a single interaction, which stays in training.
    assert sorted(test[0].indices) == [0, 2]
    assert sorted(test[1].indices) == [2]
    assert test[2].nnz == 0 and train[2].nnz == 1
    assert abs(train + test - X).max() == 0


def test_split_by_time_rejects_missing_timestamps():
    X = sp.csr_matrix(np.array([[1, 1]], dtype=np.float32))
    with pytest.raises(ValueError):
        split_by_time(X, sp.csr_matrix(np.array([[5, 0]], dtype=np.float64)))


# -- selection -----------------------------------------------------------------------------------------------


def test_select_model_prefers_a_personalised_model_on_clustered_data():
    X = block_clusters(seed=5)
    train, test = split_per_user_random(X, test_fraction=0.2, seed=5)
    fit_part, valid = split_per_user_random(train, test_fraction=0.15, seed=6)
    texts = [f"cluster {i % 4} lesson {i}" for i in range(X.shape[1])]
    selection = select_model(fit_part, valid, grid="small", item_texts=texts, seed=0)

    names = [row["model"] for row in selection.results]
    assert {"popularity", "itemknn", "ease", "als", "svd", "content", "hybrid"} <= set(names)
    for row in selection.results:
        assert {"model", "params", "ndcg@10", "recall@20", "coverage@10", "popularity_bias", "fit_s"} <= set(row)
        json.dumps(row)
    assert selection.best != "popularity"
    best_row = selection.result(selection.best)
    assert best_row["ndcg@10"] == max(row["ndcg@10"] for row in selection.results)

    # The winner, refitted on all training data, beats popularity on the untouched test split.
    winner = selection.build()
    assert winner._X is None  # unfitted
    winner.fit(train)
    popularity = evaluate(selection.build("popularity").fit(train), train, test)
    assert evaluate(winner, train, test)["ndcg@10"] > popularity["ndcg@10"] + 0.1

    hybrid = selection.build("hybrid")
    assert isinstance(hybrid, Hybrid)
    assert all(model._X is None for model, _ in hybrid.components)
    assert sum(weight for _, weight in hybrid.components) == pytest.approx(1.0)


def test_select_model_skips_what_cannot_run():
    X = block_clusters(n_users=80, n_items=20)
    train, valid = split_per_user_random(X, seed=0)
    selection = select_model(train, valid, grid="none", candidates=["popularity", "ease", "content", "svd"])
    assert [row["model"] for row in selection.results if row["model"] != "hybrid"] == ["popularity", "ease", "svd"]

    original = EASE.MAX_ITEMS
    EASE.MAX_ITEMS = 10
    try:
        selection = select_model(train, valid, grid="none", candidates=["popularity", "ease", "edlae", "svd"])
    finally:
        EASE.MAX_ITEMS = original
    assert "ease" not in [row["model"] for row in selection.results]
    assert "edlae" not in [row["model"] for row in selection.results]
