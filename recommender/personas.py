"""Personas: K-Means over what learners do, each segment named after what sets it apart.

Features per learner (from the fit's matrix): affinity to each of the storefront's main categories (share of the
learner's weight), the level of what they use (0 beginner .. 2 advanced), price sensitivity (share of their weight
on free or cheap items) and activity (log of their total weight). The number of segments (3 to 6) is the one with
the best silhouette on a sample.
"""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext as _
from scipy import sparse
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from .dataset import Dataset

MAX_CATEGORIES = 8
MIN_LEARNERS = 30


def learner_features(data: Dataset) -> tuple[np.ndarray, list[str], list[int]]:
    X = data.X
    totals = np.asarray(X.sum(axis=1)).ravel()
    safe = np.maximum(totals, 1e-9)
    item_weight = np.asarray(X.sum(axis=0)).ravel()
    usage: dict[int, float] = {}
    for col, cats in enumerate(data.categories):
        for cat in cats:
            usage[cat] = usage.get(cat, 0.0) + float(item_weight[col])
    top_categories = [cat for cat, _w in sorted(usage.items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES]]
    rows, cols = [], []
    for col, cats in enumerate(data.categories):
        for k, cat in enumerate(top_categories):
            if cat in cats:
                rows.append(col)
                cols.append(k)
    item_category = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                      shape=(X.shape[1], len(top_categories)))
    affinity = np.asarray((X @ item_category).todense()) / safe[:, None]
    level = np.asarray(X @ data.levels.astype(np.float32)).ravel() / safe
    cheap_cut = np.percentile(data.prices, 33) if len(data.prices) else 0
    cheap = (data.prices <= cheap_cut).astype(np.float32)
    price_sensitivity = np.asarray(X @ cheap).ravel() / safe
    activity = np.log1p(totals)
    names = [f"category:{cat}" for cat in top_categories] + ["level", "price_sensitivity", "activity"]
    return np.column_stack([affinity, level, price_sensitivity, activity]), names, top_categories


def personas_find(data: Dataset, *, seed: int = 0, sample: int = 5000) -> list[dict]:
    """Segments with a name, size, centre (in the features' own units) and top item columns."""
    if data.X.shape[0] < MIN_LEARNERS:
        return []
    features, names, top_categories = learner_features(data)
    scaled = StandardScaler().fit_transform(features)
    rng = np.random.default_rng(seed)
    probe = scaled[rng.choice(len(scaled), size=min(sample, len(scaled)), replace=False)]
    best = None
    for k in range(3, 7):
        if k >= len(probe):
            break
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, batch_size=2048).fit(probe)
        if len(set(model.labels_)) < 2:
            continue
        score = silhouette_score(probe, model.labels_, sample_size=min(2000, len(probe)), random_state=seed)
        if best is None or score > best[0]:
            best = (score, k)
    if best is None:
        return []
    # Centres from a sample (a few thousand learners place them as well as all of them), then every learner.
    fit_on = scaled[rng.choice(len(scaled), size=min(4 * sample, len(scaled)), replace=False)]
    model = MiniBatchKMeans(n_clusters=best[1], random_state=seed, n_init=3, batch_size=2048).fit(fit_on)
    labels = model.predict(scaled)
    overall = features.mean(axis=0)
    personas = []
    for number in range(best[1]):
        members = labels == number
        if not members.any():
            continue
        centre = features[members].mean(axis=0)
        weights = np.asarray(data.X[members].sum(axis=0)).ravel()
        weights = np.where(data.allowed, weights, -1)
        top = [int(i) for i in np.argsort(-weights)[:5] if weights[i] > 0]
        personas.append({
            "name": persona_name(centre, overall, names, top_categories, data.category_names),
            "size": int(members.sum()),
            "features": {name: round(float(value), 3) for name, value in zip(names, centre, strict=True)},
            "top_items": top,
        })
    return sorted(personas, key=lambda p: -p["size"])


def persona_name(centre: np.ndarray, overall: np.ndarray, names: list[str], top_categories: list[int],
                 category_names: dict[int, str]) -> str:
    """"Data Science · beginners · bargain hunters · very active": the segment's leading category, then how its
    level, price sensitivity and activity differ from the storefront's average."""
    parts = []
    k = len(top_categories)
    if k:
        lift = centre[:k] - overall[:k]
        parts.append(category_names.get(top_categories[int(np.argmax(lift))], ""))
    level = centre[names.index("level")]
    parts.append(_("beginners") if level < 0.6 else _("advanced learners") if level > 1.3 else _("intermediate"))
    price, price_all = centre[names.index("price_sensitivity")], overall[names.index("price_sensitivity")]
    if price > price_all * 1.25:
        parts.append(_("bargain hunters"))
    elif price < price_all * 0.75:
        parts.append(_("premium buyers"))
    activity, activity_all = centre[names.index("activity")], overall[names.index("activity")]
    if activity > activity_all + 0.5:
        parts.append(_("very active"))
    elif activity < activity_all - 0.5:
        parts.append(_("occasional"))
    return " · ".join(p for p in parts if p)
