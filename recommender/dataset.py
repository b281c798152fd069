"""One storefront's behaviour as the matrices the engine fits: learners x items, weighted implicit feedback.

Read inside the tenant's scope. The events are grouped per (learner, item, kind) in the database, so what crosses
the wire is one row per cell and kind; on PostgreSQL it comes through ``COPY`` and is parsed by NumPy, which keeps a
two-million-event storefront to a few seconds.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import Q
from scipy import sparse

from accounts.models import Membership
from accounts.roles import ADMIN_ROLES
from catalog.models import ContentItem, ItemProgress
from payments.models import Entitlement

from .events import EVENT_WEIGHTS
from .models import Event, EventKind, EventRollup, LearnerPreference

HALF_LIFE_DAYS = 120.0  # interest fades: an event this old counts half
KIND_CODES = {kind: code for code, kind in enumerate(EVENT_WEIGHTS)}
FITTED_KINDS = [kind for kind, weight in EVENT_WEIGHTS.items() if weight > 0]


@dataclass
class Dataset:
    """Rows are ``user_ids``, columns ``item_ids`` (every item of the storefront that is published or was used)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    X: sparse.csr_matrix  # float32 weights
    T: sparse.csr_matrix  # float64 seconds since the epoch of the cell's latest event (same pattern as X)
    owned: sparse.csr_matrix  # bought or completed: never recommended
    completed: sparse.csr_matrix
    allowed: np.ndarray  # published: may be recommended
    texts: list[str]
    categories: list[list[int]]
    category_names: dict[int, str]
    levels: np.ndarray
    prices: np.ndarray
    events: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape


def _cells_postgres(tenant_id: int, excluded_users: list[int]) -> np.ndarray:
    """(user, item, kind code, count, value, epoch seconds) per cell and kind, raw events and rollups together."""
    kinds = "CASE kind " + " ".join(f"WHEN '{k}' THEN {c}" for k, c in KIND_CODES.items()) + " END"
    exclude = "AND NOT (user_id = ANY(%(excluded)s))" if excluded_users else ""
    # Only table names and the constant kind codes are formatted in; values are bound by mogrify (COPY takes no
    # parameters of its own).
    # Raw events and rollups of one (learner, item, kind) merge into one cell before weighting, so folding old
    # events into rollups does not change the matrix; the value is the latest one (a rating changed stays changed).
    query = (
        f"SELECT user_id, item_id, {kinds}, SUM(n), "  # noqa: S608
        "COALESCE((ARRAY_AGG(v ORDER BY t DESC) FILTER (WHERE v IS NOT NULL))[1], 0), "
        "EXTRACT(EPOCH FROM MAX(t))::float8 FROM ("
        f"SELECT user_id, item_id, kind, 1 AS n, value AS v, occurred_at AS t FROM {Event._meta.db_table} "
        f"WHERE tenant_id = %(tenant)s AND kind = ANY(%(kinds)s) {exclude} "
        f"UNION ALL SELECT user_id, item_id, kind, count, value, last_at FROM {EventRollup._meta.db_table} "
        f"WHERE tenant_id = %(tenant)s AND kind = ANY(%(kinds)s) {exclude}"
        ") AS cells GROUP BY user_id, item_id, kind"
    )
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        bound = cursor.cursor.mogrify(query, {"tenant": tenant_id, "kinds": FITTED_KINDS,
                                              "excluded": list(excluded_users)}).decode()
        cursor.cursor.copy_expert(f"COPY ({bound}) TO STDOUT", buffer)
    text = buffer.getvalue()
    if not text:
        return np.zeros((0, 6))
    return np.fromstring(text.replace("\t", " ").replace("\n", " "), sep=" ").reshape(-1, 6)


def _cells_portable(excluded_users: list[int]) -> np.ndarray:
    """The same cells as ``_cells_postgres``, merged in Python (the embedded default's small storefronts)."""
    cells: dict[tuple[int, int, str], list] = {}
    raw = (Event.objects.filter(kind__in=FITTED_KINDS).exclude(user_id__in=excluded_users)
           .values_list("user_id", "item_id", "kind", "value", "occurred_at"))
    rollups = (EventRollup.objects.filter(kind__in=FITTED_KINDS).exclude(user_id__in=excluded_users)
               .values_list("user_id", "item_id", "kind", "value", "last_at", "count"))
    for user, item, kind, value, at, *count in [*raw, *rollups]:
        cell = cells.setdefault((user, item, kind), [0, None, None])
        cell[0] += count[0] if count else 1
        if cell[2] is None or at > cell[2]:
            cell[2] = at
            cell[1] = value if value is not None else cell[1]
        elif cell[1] is None:
            cell[1] = value
    out = [(u, i, KIND_CODES[k], n, v or 0.0, t.timestamp()) for (u, i, k), (n, v, t) in cells.items()]
    return np.array(out, dtype=np.float64).reshape(-1, 6)


def cell_weights(kind_codes: np.ndarray, counts: np.ndarray, values: np.ndarray, ages_days: np.ndarray,
                 *, half_life_days: float = HALF_LIFE_DAYS) -> np.ndarray:
    """Weight of each (learner, item, kind): the kind's weight, a little more for repeats, decayed by age.

    A rating counts by its stars: five stars twice a neutral three, one or two stars nothing.
    """
    base = np.array(list(EVENT_WEIGHTS.values()), dtype=np.float64)[kind_codes]
    repeat = 1.0 + 0.25 * np.log(np.maximum(counts, 1))
    rate = kind_codes == KIND_CODES[EventKind.RATE]
    stars = np.where(rate, np.clip(values - 2.0, 0.0, 3.0) / 1.5, 1.0)
    decay = np.power(0.5, np.maximum(ages_days, 0.0) / half_life_days)
    return base * repeat * stars * decay


def dataset_load(*, tenant, now: float | None = None) -> Dataset:
    """The storefront's matrices. Learners who turned personalisation off are left out of the fit, and so is the
    storefront's team (owners, staff, creators), whose views of their own items are work, not taste."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    excluded = sorted({*LearnerPreference.objects.filter(personalised=False).values_list("user_id", flat=True),
                       *Membership.objects.filter(role__in=ADMIN_ROLES).values_list("user_id", flat=True)})
    postgres = connection.vendor == "postgresql"
    cells = _cells_postgres(tenant.pk, excluded) if postgres else _cells_portable(excluded)
    read = time.perf_counter()

    items = list(ContentItem.objects.filter(Q(status=ContentItem.Status.PUBLISHED) | Q(pk__in=set(
        cells[:, 1].astype(np.int64).tolist()))).order_by("pk").values_list(
        "pk", "status", "title", "subtitle", "description", "level", "price"))
    item_ids = np.array([row[0] for row in items], dtype=np.int64)
    column = {pk: n for n, pk in enumerate(item_ids.tolist())}
    tags: dict[int, list[str]] = {}
    categories: dict[int, list[tuple[int, str]]] = {}
    for pk, name in ContentItem.tags.through.objects.filter(contentitem__in=item_ids.tolist()).values_list(
            "contentitem_id", "tag__name"):
        tags.setdefault(pk, []).append(name)
    for pk, cat_id, name in ContentItem.categories.through.objects.filter(
            contentitem__in=item_ids.tolist()).values_list("contentitem_id", "category_id", "category__name"):
        categories.setdefault(pk, []).append((cat_id, name))
    texts = [" ".join([title, subtitle, description[:2000], " ".join(tags.get(pk, [])),
                       " ".join(name for _id, name in categories.get(pk, []))])
             for pk, _status, title, subtitle, description, _level, _price in items]

    user_ids, rows = np.unique(cells[:, 0].astype(np.int64), return_inverse=True)
    cols = np.array([column[int(i)] for i in cells[:, 1]], dtype=np.int64) if len(cells) else np.zeros(0, np.int64)
    codes = cells[:, 2].astype(np.int64)
    weights = cell_weights(codes, cells[:, 3], cells[:, 4], (now - cells[:, 5]) / 86400.0)
    shape = (len(user_ids), len(item_ids))
    X = sparse.csr_matrix((weights.astype(np.float32), (rows, cols)), shape=shape)  # duplicates are summed
    X.eliminate_zeros()
    T = _max_per_cell(rows, cols, cells[:, 5], shape)
    T = _same_pattern(T, X)

    owned, completed = _owned_matrix(user_ids, column)
    levels = {"beginner": 0, "intermediate": 1, "advanced": 2}
    dataset = Dataset(
        user_ids=user_ids, item_ids=item_ids, X=X, T=T, owned=owned, completed=completed,
        allowed=np.array([row[1] == ContentItem.Status.PUBLISHED for row in items], dtype=bool),
        texts=texts, categories=[[cat for cat, _name in categories.get(pk, [])] for pk in item_ids.tolist()],
        category_names={cat: name for pairs in categories.values() for cat, name in pairs},
        levels=np.array([levels.get(row[5], 0) for row in items], dtype=np.int8),
        prices=np.array([row[6] for row in items], dtype=np.int64),
        events=int(cells[:, 3].sum()) if len(cells) else 0,
    )
    dataset.timings = {"read_events_s": round(read - started, 3), "build_s": round(time.perf_counter() - read, 3)}
    return dataset


def _max_per_cell(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape) -> sparse.csr_matrix:
    """The latest time per cell (sparse matrices sum duplicates; this keeps the maximum instead)."""
    if not len(rows):
        return sparse.csr_matrix(shape, dtype=np.float64)
    order = np.lexsort((-values, cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return sparse.csr_matrix((values[first], (rows[first], cols[first])), shape=shape)


def _same_pattern(T: sparse.csr_matrix, X: sparse.csr_matrix) -> sparse.csr_matrix:
    """T restricted to X's non-zeros (cells whose weight came to zero, such as a one-star rating alone, go)."""
    mask = X.copy()
    mask.data = np.ones_like(mask.data, dtype=np.float64)
    T = T.multiply(mask).tocsr()
    T.sort_indices()
    return T


def _owned_matrix(user_ids: np.ndarray, column: dict[int, int]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Items bought (alone or in a bundle) or completed, and the completed ones alone.

    Recommending an owned item again would waste the slot.

    Subscription access does not count: a subscriber still needs to be told what to learn next.
    """
    row = {int(u): n for n, u in enumerate(user_ids.tolist())}
    pairs: set[tuple[int, int]] = set()
    done: set[tuple[int, int]] = set()
    active = Entitlement.objects.filter(revoked_at__isnull=True)
    for user_id, item_id in active.filter(item__isnull=False).values_list("user_id", "item_id"):
        pairs.add((user_id, item_id))
    for user_id, item_id in active.filter(bundle__isnull=False).values_list("user_id", "bundle__items"):
        pairs.add((user_id, item_id))
    for user_id, item_id in ItemProgress.objects.filter(completed_at__isnull=False).values_list("user_id", "item_id"):
        done.add((user_id, item_id))
    return _pairs_matrix(pairs | done, row, column), _pairs_matrix(done, row, column)


def _pairs_matrix(pairs: set[tuple[int, int]], row: dict[int, int], column: dict[int, int]) -> sparse.csr_matrix:
    cells = [(row[u], column[i]) for u, i in pairs if u in row and i in column]
    r = np.array([c[0] for c in cells], dtype=np.int64)
    c = np.array([c[1] for c in cells], dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(cells), dtype=np.float32), (r, c)), shape=(len(row), len(column)))


def popularity_ranking(dataset: Dataset, *, n: int = 50) -> tuple[list[int], dict[str, list[int]]]:
    """Decayed popularity of published items, overall and per category (item primary keys, best first)."""
    scores = np.asarray(dataset.X.sum(axis=0)).ravel() if dataset.X.shape[0] else np.zeros(len(dataset.item_ids))
    scores = np.where(dataset.allowed, scores, -math.inf)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])]
    overall = [int(dataset.item_ids[i]) for i in order[:n]]
    by_category: dict[str, list[int]] = {}
    for i in order:
        for cat in dataset.categories[i]:
            ranked = by_category.setdefault(str(cat), [])
            if len(ranked) < 12:
                ranked.append(int(dataset.item_ids[i]))
    return overall, by_category
