"""The nightly fit of one storefront: claim the day's run, read behaviour, choose and fit a model, write what serving
reads.

The run commits in phases (``tenant_phase``): the claim first, so a second beat or a re-run sees the day taken; the
read; the computation outside any transaction; then one transaction writes the new run's rows and makes them the
serving ones. A failure marks the run failed (with the error) and the serving rows stay as they were; a failed
forced refit of a date that had succeeded leaves that run as it was, with a note.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from scipy import sparse

from catalog.models import ContentItem
from marketplace.tenancy import tenant_phase

from . import engine
from .dataset import Dataset, dataset_load, popularity_ranking
from .models import Experiment, FitRun, LearnerPreference, Persona, Recommendation, SimilarItems
from .personas import personas_find
from .selectors import serving_cache_key

log = logging.getLogger(__name__)

TOP_N = 20
SIMILAR_N = 20
STALE_AFTER = timedelta(hours=3)  # a "running" run older than this was left by a worker that died
MIN_INTERACTIONS = 20  # below this there is nothing to learn: popularity only
LARGE = 20_000  # learners: beyond this the holdout uses defaults and a sample of learners
# A large storefront's candidates: the strongest per fitting second. The content model (for cold items) still
# gives every item its "Similar" neighbours; it is not a contender for warm learners' top-N there.
LARGE_CANDIDATES = ["popularity", "itemknn", "rp3beta", "ease", "als", "hybrid"]
LARGE_EVAL_USERS = 5_000
# Why a pick: "-" none, "f" finished, "b" bought, "v" viewed (the ref is an item), "c" popular in a category (the ref
# is a category). Stored one letter per pick, beside the picks' ids, scores and refs (see Recommendation).
REASONS_CODE = "-fbvc"

Progress = Callable[[str], None]


@dataclass
class Claim:
    run: FitRun | None
    reason: str
    refit: bool = False  # a forced refit of a date that succeeded: its row keeps serving until the new one commits


def run_claim(*, tenant, run_date: date, force: bool = False) -> Claim:
    """Take the day's run for this storefront, or say why not (done already, or another worker has it).

    A forced refit of a date that succeeded leaves the row as it is (still succeeded, still serving if it serves):
    serving reads only succeeded runs, so marking it running, or failed when the refit fails, would take the
    storefront's picks down for the length of the refit, or until the next night.

    A live claim (running, younger than ``STALE_AFTER``) is not taken over, also not by a forced fit: both would
    write the same run's rows. Force again once it has finished.
    """
    with tenant_phase(tenant):
        run = FitRun.objects.select_for_update().filter(run_date=run_date).first()
        now = timezone.now()
        if run is not None:
            if run.status == FitRun.Status.SUCCEEDED:
                return Claim(run, "", refit=True) if force else Claim(None, "already fitted for this date")
            if run.status == FitRun.Status.RUNNING and now - run.started_at < STALE_AFTER:
                since = run.started_at.isoformat(timespec="seconds")
                return Claim(None, f"another worker is fitting this date (since {since})"
                             + ("; force again once it has finished" if force else ""))
            run.status, run.started_at, run.finished_at, run.note = FitRun.Status.RUNNING, now, None, ""
            run.save(update_fields=["status", "started_at", "finished_at", "note"])
            return Claim(run, "")
        try:
            with transaction.atomic():
                run = FitRun.objects.create(tenant=tenant, run_date=run_date, started_at=now)
        except IntegrityError:
            return Claim(None, "another worker is fitting this date")
        return Claim(run, "")


def fit_run(*, tenant, run_date: date | None = None, force: bool = False, progress: Progress | None = None,
            max_eval_users: int | None = None) -> FitRun | None:
    """Fit one storefront for ``run_date`` (today by default). Returns the run, or None when it was not ours to do.

    Safe to re-run: a date already fitted is left alone unless ``force``.
    """
    run_date = run_date or timezone.localdate()
    claim = run_claim(tenant=tenant, run_date=run_date, force=force)
    if claim.run is None:
        log.info("recommender fit skipped", extra={"tenant": tenant.slug, "reason": claim.reason})
        return None
    run = claim.run
    step = progress or (lambda _name: None)
    try:
        stages: dict = {}
        with _stage(stages, "read"), tenant_phase(tenant):
            step("read")
            data = dataset_load(tenant=tenant)
            strategies = _experiment_strategies()
        stages["read"].update(data.timings)
        with translation.override(tenant.default_language):  # persona names
            outcome = fit_compute(data, stages=stages, step=step, strategies=strategies,
                                  max_eval_users=max_eval_users)
        with _stage(stages, "write"), tenant_phase(tenant):
            step("write")
            # Writers of one run queue on its row; one whose claim was taken over meanwhile (it looked dead) leaves
            # the run to the worker that holds it now.
            if not _claim_held(claim):
                log.warning("recommender fit not written: its claim was taken over",
                            extra={"tenant": tenant.slug, "run": run.pk})
                return None
            run_write(run=run, data=data, outcome=outcome, stages=stages)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        with tenant_phase(tenant):
            if claim.refit:  # the date's earlier fit stands, and keeps serving if it served
                FitRun.objects.filter(pk=run.pk).update(note=f"A refit failed; this fit stands. {error}"[:2000])
            else:  # only our own claim: a run another worker took over, or has completed, is theirs
                FitRun.objects.filter(pk=run.pk, status=FitRun.Status.RUNNING, started_at=run.started_at).update(
                    status=FitRun.Status.FAILED, finished_at=timezone.now(), note=error[:2000])
        raise
    cache.delete(serving_cache_key(tenant.pk))
    with tenant_phase(tenant):
        FitRun.objects.filter(pk=run.pk).update(stages=stages)  # with the write stage's own figures
        return FitRun.objects.get(pk=run.pk)


def _claim_held(claim: Claim) -> bool:
    """Whether ``claim`` still holds its run, with the run's row locked until the caller's transaction ends: a
    refit's run is still succeeded; any other is still running since the claim's start."""
    run = FitRun.objects.select_for_update().filter(pk=claim.run.pk).first()
    if run is None:
        return False
    if claim.refit:
        return run.status == FitRun.Status.SUCCEEDED
    return run.status == FitRun.Status.RUNNING and run.started_at == claim.run.started_at


class _stage:
    """Time and peak memory of one stage, into ``stages[name]``."""

    def __init__(self, stages: dict, name: str):
        self.stages, self.name = stages, name

    def __enter__(self):
        self.started = time.perf_counter()
        self.stages[self.name] = {}
        return self

    def __exit__(self, *exc):
        self.stages[self.name].update(seconds=round(time.perf_counter() - self.started, 3), peak_mb=_peak_mb())
        return False


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _experiment_strategies() -> set[str]:
    strategies = set()
    for arms in Experiment.objects.filter(is_active=True).values_list("arms", flat=True):
        strategies |= {arm["strategy"] for arm in arms}
    return strategies - {"model", "popularity"}


@dataclass
class Outcome:
    results: list
    winner: str
    winner_params: dict
    served: bool
    note: str
    popular: list
    popular_by_category: dict
    top: dict  # strategy ("" for the winner) -> (items int32 (users, n) column indices, scores, reasons)
    also_bought: tuple | None
    similar: tuple | None
    personas: list


def fit_compute(data: Dataset, *, stages: dict, step: Progress, strategies: set[str] = frozenset(),
                max_eval_users: int | None = None) -> Outcome:
    """Everything between reading and writing; no database access (it runs outside any transaction)."""
    popular, by_category = popularity_ranking(data)
    users, items = data.shape
    outcome = Outcome(results=[], winner="popularity", winner_params={}, served=False, note="", popular=popular,
                      popular_by_category=by_category, top={}, also_bought=None, similar=None, personas=[])
    with _stage(stages, "content"):
        step("content model")
        if items >= 2:
            content = engine.ContentModel(data.texts).fit(data.X if users else sparse.csr_matrix((1, items)))
            outcome.similar = content.similar_items(SIMILAR_N, allowed=data.allowed)
    if data.X.nnz < MIN_INTERACTIONS or users < 2 or items < 2:
        outcome.note = "Not enough behaviour yet: popular and editorial picks are served."
        return outcome

    with _stage(stages, "select"):
        step("holdout and candidates")
        train, holdout = engine.split_by_time(data.X, data.T, test_fraction=0.2)
        large = users > LARGE
        selection = engine.select_model(
            train, holdout, item_texts=None if large else data.texts, grid="none" if large else "small",
            candidates=LARGE_CANDIDATES if large else None,
            max_eval_users=max_eval_users or (LARGE_EVAL_USERS if large else None), seed=0)
    outcome.results = selection.results
    outcome.winner = selection.best
    best = next(r for r in selection.results if r["model"] == selection.best)
    baseline = next((r for r in selection.results if r["model"] == "popularity"), None)
    outcome.winner_params = best.get("params", {})
    outcome.served = selection.best != "popularity" and (baseline is None or best["ndcg@10"] > baseline["ndcg@10"])
    if not outcome.served:
        outcome.note = "The best model did not beat popularity on the holdout; the serving model is unchanged."
        return outcome

    with _stage(stages, "refit"):
        step(f"refit {selection.best}")
        model = selection.build(selection.best).fit(data.X)
    with _stage(stages, "top_n"):
        step("top-N for every learner")
        exclude = data.owned
        ranked, scores = engine.top_n(model, exclude, TOP_N, allowed=data.allowed)
        outcome.top[""] = (ranked, scores)
        skipped = []
        for strategy in sorted(strategies):
            # The winner's picks are the "" rows, which serving reads for an arm of the winner's strategy too.
            if strategy == selection.best or strategy not in engine.MODEL_CLASSES:
                continue
            other = _arm_model(selection, strategy, data)
            if other is None:
                skipped.append(strategy)
                continue
            outcome.top[strategy] = engine.top_n(other.fit(data.X), exclude, TOP_N, allowed=data.allowed)
        if skipped:
            outcome.note = (f"Not computed for the A/B test on a storefront this size: {', '.join(skipped)}. "
                            "Learners in those arms get popular picks.")
    with _stage(stages, "similar"):
        step("similar items")
        item_models = ("itemknn", "rp3beta", "ease", "edlae")
        neighbours = model if selection.best in item_models else engine.ItemKNN(k=50).fit(data.X)
        outcome.also_bought = neighbours.similar_items(SIMILAR_N, allowed=data.allowed)
    with _stage(stages, "reasons"):
        step("reasons")
        outcome.top = {name: (r, s, *explain(data, r, outcome.also_bought)) for name, (r, s) in outcome.top.items()}
    with _stage(stages, "personas"):
        step("personas")
        outcome.personas = personas_find(data)
    return outcome


def _arm_model(selection: engine.Selection, strategy: str, data: Dataset) -> engine.Recommender | None:
    """An unfitted model for an A/B test arm: with the parameters the holdout chose, or, for a model a large
    storefront's selection left out, with its defaults; None for what cannot run here (EASE above its item limit,
    a blend that was not chosen)."""
    if any(row["model"] == strategy for row in selection.results):
        return selection.build(strategy)
    if strategy == "hybrid" or (strategy in ("ease", "edlae") and data.shape[1] > engine.EASE.MAX_ITEMS):
        return None
    return engine.build_model(strategy, {}, item_texts=data.texts)


def explain(data: Dataset, ranked: np.ndarray, neighbours: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Why each recommendation: the learner's history item most similar to it ("because you finished X"), else the
    item's first category ("popular in Data Science"), else nothing.

    Returns (codes, refs) shaped like ``ranked``: codes index ``REASONS_CODE`` ("-" none, "f" finished, "b" bought,
    "v" viewed, "c" category); refs are item columns, or category ids for "c".
    """
    n_items = len(data.item_ids)
    n_users, n_picks = ranked.shape
    history = 3
    idx, sims = neighbours
    # Sparse lookups as sorted keys (row * n_items + column) and binary search: millions at once, no Python loop.
    neighbour_keys = (np.repeat(np.arange(n_items, dtype=np.int64), idx.shape[1]) * n_items + idx.ravel())
    keep = idx.ravel() >= 0
    neighbour_keys, neighbour_sims = _sorted_keys(neighbour_keys[keep], sims.ravel()[keep])

    # Each learner's strongest few history items (by weight), -1 where they have fewer.
    X = data.X.tocsr()
    lengths = np.diff(X.indptr)
    row_of = np.repeat(np.arange(X.shape[0]), lengths)
    order = np.lexsort((-X.data, row_of))
    rank_in_row = np.arange(len(order)) - X.indptr[row_of[order]]
    top = rank_in_row < history
    top_hist = np.full((X.shape[0], history), -1, dtype=np.int64)
    top_hist[row_of[order][top], rank_in_row[top]] = X.indices[order][top]

    h = np.repeat(top_hist[:, :, None], n_picks, axis=2)  # (users, history, picks)
    r = np.repeat(ranked[:, None, :].astype(np.int64), history, axis=1)
    values = np.where((h >= 0) & (r >= 0), _lookup(neighbour_keys, neighbour_sims, h * n_items + r), 0.0)
    best = values.argmax(axis=1)
    best_value = np.take_along_axis(values, best[:, None, :], axis=1)[:, 0, :]
    best_item = np.take_along_axis(top_hist, best, axis=1)
    user_rows = np.repeat(np.arange(n_users, dtype=np.int64)[:, None], n_picks, axis=1)
    pair_keys = user_rows * n_items + np.maximum(best_item, 0)
    finished = _lookup(*_matrix_keys(data.completed), pair_keys) > 0
    bought = _lookup(*_matrix_keys(data.owned), pair_keys) > 0
    by_item = (best_value > 0) & (ranked >= 0)
    first_category = np.array([cats[0] if cats else -1 for cats in data.categories], dtype=np.int64)
    category = first_category[np.maximum(ranked, 0)]
    by_category = ~by_item & (ranked >= 0) & (category >= 0)
    code = np.where(finished, 1, np.where(bought, 2, 3))
    codes = np.where(by_item, code, np.where(by_category, 4, 0)).astype(np.int8)
    refs = np.where(by_item, best_item, np.where(by_category, category, -1))
    return codes, refs


def _sorted_keys(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], values[order]


def _matrix_keys(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    coo = matrix.tocoo()
    return _sorted_keys(coo.row.astype(np.int64) * matrix.shape[1] + coo.col, coo.data)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[key] for each key in ``query`` (0 where absent); ``keys`` sorted."""
    if not len(keys):
        return np.zeros(query.shape, dtype=np.float32)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0.0).astype(np.float32)


def run_write(*, run: FitRun, data: Dataset, outcome: Outcome, stages: dict) -> FitRun:
    """Write the run's rows and make them serve (one transaction: readers see the old rows or the new ones).

    What changed while the fit computed is honoured here: an item deleted since the read (a draft) gets no row,
    and a learner erased or who turned personalisation off since the read gets no picks. A refit of the serving
    date whose best model does not beat popularity leaves that date's picks serving, as any run that serves no
    model does.
    """
    tenant_id = run.tenant_id
    item_ids, user_ids = data.item_ids, data.user_ids
    previous = list(FitRun.objects.filter(served=True).exclude(pk=run.pk).values_list("pk", flat=True))
    keep_serving = not outcome.served and FitRun.objects.filter(pk=run.pk, served=True).exists()
    kept_also_bought = (dict(SimilarItems.objects.filter(run=run).values_list("item_id", "also_bought"))
                        if keep_serving else {})
    if not keep_serving:
        Recommendation.objects.filter(run=run).delete()
    SimilarItems.objects.filter(run=run).delete()
    Persona.objects.filter(run=run).delete()
    present = set(ContentItem.objects.values_list("pk", flat=True))
    if outcome.served:
        rows = []
        for strategy, (ranked, scores, codes, refs) in outcome.top.items():
            # Columns become item keys; item reasons' refs too (a category reason's ref is a category id already).
            by_item = (codes > 0) & (codes < 4)
            pks = np.where(ranked >= 0, item_ids[np.maximum(ranked, 0)], -1)
            ref_pks = np.where(by_item, item_ids[np.where(by_item, refs, 0)], np.where(codes == 4, refs, -1))
            why = np.array(list(REASONS_CODE), dtype="<U1")[codes]
            lengths = (ranked >= 0).sum(axis=1).tolist()
            pks, ref_pks, scores = pks.tolist(), ref_pks.tolist(), np.round(scores.astype(np.float64), 5).tolist()
            why = ["".join(row) for row in why.tolist()]
            for u, user_pk in enumerate(user_ids.tolist()):
                n = lengths[u]
                if n:
                    rows.append((strategy, user_pk, {"ids": pks[u][:n], "scores": scores[u][:n],
                                                     "why": why[u][:n], "refs": ref_pks[u][:n]}))
        _bulk_write(Recommendation, tenant_id, run.pk, ["strategy", "user_id", "items"], rows)
    neighbour_rows = []
    for col, pk in enumerate(item_ids.tolist()):
        if pk not in present:
            continue
        also = (_neighbour_list(outcome.also_bought, col, item_ids) if outcome.served
                else kept_also_bought.get(pk, []))
        similar = _neighbour_list(outcome.similar, col, item_ids)
        if also or similar:
            neighbour_rows.append((pk, also, similar))
    _bulk_write(SimilarItems, tenant_id, run.pk, ["item_id", "also_bought", "similar"], neighbour_rows)
    for number, persona in enumerate(outcome.personas):
        Persona.objects.create(tenant_id=tenant_id, run=run, number=number, name=persona["name"],
                               size=persona["size"], features=persona["features"],
                               top_items=[int(item_ids[i]) for i in persona["top_items"]])
    run.status, run.finished_at = FitRun.Status.SUCCEEDED, timezone.now()
    run.learners, run.items, run.interactions = len(user_ids), len(item_ids), int(data.X.nnz)
    run.results, run.stages = outcome.results, stages
    if keep_serving:  # the winner stays the model whose picks serve
        run.served, run.note = True, ("The refit's best model did not beat popularity; the picks of this date's "
                                      "earlier fit still serve.")
    else:
        run.winner, run.winner_params = outcome.winner, outcome.winner_params
        run.served, run.note = outcome.served, outcome.note
    run.popular, run.popular_by_category = outcome.popular, outcome.popular_by_category
    run.save()
    if outcome.served:
        FitRun.objects.filter(pk__in=previous).update(served=False)
        # Older runs keep their metrics for the history; their serving rows are no longer read.
        Recommendation.objects.filter(run_id__in=previous).delete()
        SimilarItems.objects.exclude(run=run).delete()
    else:  # "Similar" is read from this run; "Learners also bought" still from the serving one
        SimilarItems.objects.exclude(run_id__in=[run.pk, *previous]).delete()
    # Last, so that it sees erasures and opt-outs committed while the rows above were written.
    Recommendation.objects.filter(run=run).filter(
        Q(user__erased_at__isnull=False)
        | Q(user__in=LearnerPreference.objects.filter(personalised=False).values("user"))).delete()
    return run


def _neighbour_list(neighbours: tuple | None, col: int, item_ids: np.ndarray) -> list:
    if neighbours is None:
        return []
    idx, sims = neighbours
    return [[int(item_ids[i]), round(float(s), 5)] for i, s in zip(idx[col], sims[col], strict=True)
            if i >= 0 and s > 0]


def _bulk_write(model, tenant_id: int, run_id: int, columns: list[str], rows: list[tuple]) -> None:
    """Insert many rows: PostgreSQL's COPY where we have it (a large storefront writes 100,000 learners' rows).

    PostgreSQL refuses COPY into a table with row-level security, as production's application role sees these; so
    the rows are copied into a temporary table of the same columns and inserted from there, under the policies."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        import io
        import json

        buffer = io.StringIO()
        for row in rows:
            values = [str(tenant_id), str(run_id)]
            for value in row:
                text = (json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                        if isinstance(value, list | dict) else str(value))
                values.append(text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n"))
            buffer.write("\t".join(values) + "\n")
        buffer.seek(0)
        table = connection.ops.quote_name(model._meta.db_table)
        staging = connection.ops.quote_name(f"staging_{model._meta.db_table}")
        fields = ", ".join(connection.ops.quote_name(name) for name in ["tenant_id", "run_id", *columns])
        # Only the model's own table and column names are formatted in, quoted; the values go through COPY.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {staging} AS SELECT {fields} FROM {table} "  # noqa: S608
                           "WITH NO DATA")
            cursor.cursor.copy_expert(f"COPY {staging} ({fields}) FROM STDIN", buffer)
            cursor.execute(f"INSERT INTO {table} ({fields}) SELECT {fields} FROM {staging}")  # noqa: S608
            cursor.execute(f"DROP TABLE {staging}")
        return
    objects = [model(tenant_id=tenant_id, run_id=run_id, **dict(zip(columns, row, strict=True))) for row in rows]
    model.objects.bulk_create(objects, batch_size=500)

