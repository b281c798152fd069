"""Writing and checking the ledger.

``entry_post`` is the only way in: it checks the postings balance per currency, locks the tenant's ``LedgerHead``,
gives the entry the next sequence number and chains its hash to the previous entry's. ``ledger_verify`` recomputes
the chain from the first entry and reports the first link that does not hold.

The hash of an entry is SHA-256 over a canonical JSON document (sorted keys, no spaces, UTF-8) of its tenant slug,
sequence, kind, memo, order number, time (ISO 8601, microseconds, UTC), previous hash and ``postings_digest``: the
SHA-256 of the canonical JSON list of its postings as ``[account code, currency, amount]``, sorted. A publication
entry moves no money and adds ``record_digest``, the SHA-256 of its canonical JSON record: which item, which version,
its content hash, its creators and their shares, and when (``publication_post``). The same chain, heads and checks
so cover every sale and every publication: the storefront's copyright record. ``docs/ledger.md``
and ``docs/verify_statement.py`` describe and implement the same computation for participants who want to check a
statement on their own; ``statement_proof`` produces what they check.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from django.db import transaction
from django.db.models import Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop

from catalog.models import ItemVersion
from marketplace.errors import ApplicationError
from marketplace.models import Tenant

from .models import GENESIS_HASH, ChainHeadPublication, JournalEntry, LedgerAccount, LedgerHead, Posting

Kind = LedgerAccount.Kind


def account_for(*, tenant: Tenant, code: str, kind: str, currency: str, name: str, creator_id: int | None = None,
                promoter_id: int | None = None, partner_id: int | None = None) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(
        tenant=tenant, code=code, currency=currency,
        defaults={"kind": kind, "name": name, "creator_id": creator_id, "promoter_id": promoter_id,
                  "partner_id": partner_id})
    return account


@dataclass(frozen=True)
class AccountSpec:
    """An account to find or create: ``name`` is called only when it must be created (it may need a query)."""

    code: str
    kind: str
    name: object
    creator_id: int | None = None
    promoter_id: int | None = None
    partner_id: int | None = None


def accounts_for(*, tenant: Tenant, currency: str, specs: list[AccountSpec]) -> dict[str, LedgerAccount]:
    """Many accounts in one query (a sale touches five or more), creating the few that do not exist yet. Always the
    tenant's own, also where scoping is off (the operator's admin on the platform host)."""
    found = {a.code: a for a in LedgerAccount.objects.filter(tenant=tenant, code__in={s.code for s in specs},
                                                             currency=currency)}
    for spec in specs:
        if spec.code not in found:
            found[spec.code] = account_for(
                tenant=tenant, code=spec.code, kind=spec.kind, currency=currency,
                name=spec.name() if callable(spec.name) else spec.name, creator_id=spec.creator_id,
                promoter_id=spec.promoter_id, partner_id=spec.partner_id)
    return found


def _sha256_json(value) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def postings_digest(postings: Iterable[tuple[str, str, int]]) -> str:
    """The hash of an entry's postings, kept apart so a statement can prove entries without showing their amounts."""
    return _sha256_json(sorted([code, currency, amount] for code, currency, amount in postings))


def entry_document(*, tenant_slug: str, sequence: int, kind: str, memo: str, order_number: str, created_at: str,
                   previous_hash: str, digest: str, record_digest: str = "") -> dict:
    document = {"tenant": tenant_slug, "sequence": sequence, "kind": kind, "memo": memo, "order": order_number,
                "created_at": created_at, "previous_hash": previous_hash, "postings_digest": digest}
    if record_digest:  # publications only: the documents of money entries are as they always were
        document["record_digest"] = record_digest
    return document


def entry_hash(*, tenant_slug: str, sequence: int, kind: str, memo: str, order_number: str, created_at: str,
               previous_hash: str, postings: Iterable[tuple[str, str, int]], record_digest: str = "") -> str:
    return _sha256_json(entry_document(
        tenant_slug=tenant_slug, sequence=sequence, kind=kind, memo=memo, order_number=order_number,
        created_at=created_at, previous_hash=previous_hash, digest=postings_digest(postings),
        record_digest=record_digest))


def record_digest(record: dict | None) -> str:
    return _sha256_json(record) if record else ""


def _timestamp(value) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_post(*, tenant: Tenant, kind: str, postings: list[tuple[LedgerAccount, int]], memo: str = "",
               order=None, refund=None, record: dict | None = None) -> JournalEntry:
    """Append one balanced entry to the tenant's chain (or, for a publication, its ``record`` and no postings).
    Zero postings are dropped; call inside the change's transaction (the head's row lock orders concurrent
    appends)."""
    postings = [(account, amount) for account, amount in postings if amount]
    totals: dict[str, int] = defaultdict(int)
    for account, amount in postings:
        totals[account.currency] += amount
    if (kind == JournalEntry.Kind.PUBLICATION) != (record is not None) or (
            kind == JournalEntry.Kind.PUBLICATION and postings):
        raise ApplicationError("A publication entry has a record and no postings; a money entry has postings.",
                               code="entry_kind_mismatch")
    if record is None and (not postings or any(totals.values())):
        raise ApplicationError("A journal entry must balance in every currency.", code="unbalanced_entry",
                               extra={"totals": dict(totals)})
    if any(account.tenant_id != tenant.pk for account, _amount in postings):
        raise ApplicationError("A journal entry posts to its own storefront's accounts only.",
                               code="foreign_account")
    with transaction.atomic(savepoint=False):  # nothing in here is caught: a failure fails the caller's transaction
        head = LedgerHead.objects.select_for_update().filter(tenant=tenant).first()
        if head is None:  # the tenant's first entry
            LedgerHead.objects.get_or_create(tenant=tenant)
            head = LedgerHead.objects.select_for_update().get(tenant=tenant)
        created_at = timezone.now()
        sequence = head.sequence + 1
        digest = entry_hash(
            tenant_slug=tenant.slug, sequence=sequence, kind=kind, memo=memo,
            order_number=order.number if order else "", created_at=_timestamp(created_at),
            previous_hash=head.hash, postings=[(a.code, a.currency, amount) for a, amount in postings],
            record_digest=record_digest(record))
        entry = JournalEntry.objects.create(tenant=tenant, sequence=sequence, kind=kind, memo=memo, order=order,
                                            refund=refund, created_at=created_at, previous_hash=head.hash,
                                            hash=digest, record=record, record_digest=record_digest(record))
        Posting.objects.bulk_create([Posting(tenant=tenant, entry=entry, account=account, amount=amount,
                                             currency=account.currency) for account, amount in postings])
        head.sequence, head.hash = sequence, digest
        head.save(update_fields=["sequence", "hash"])
    return entry


def publication_record(*, item_id: int, number: int, content_hash: str, creators: list | None,
                       published_at) -> dict:
    """What the chain records of a published version (``catalog.ItemVersion``): the item, the version, the hash of
    what was published, its creators with their shares, and when."""
    return {"item": item_id, "version": number, "content_hash": content_hash,
            "creators": sorted([c["creator"], c["share_bp"]] for c in creators or []),
            "published_at": _timestamp(published_at)}


def _version_records() -> dict[tuple[int, int], dict]:
    """Every published version of the open storefront, as the chain should record it (snapshots are not read whole:
    only their creators)."""
    return {(item_id, number): publication_record(item_id=item_id, number=number, content_hash=content_hash,
                                                  creators=creators, published_at=published_at)
            for item_id, number, content_hash, published_at, creators in ItemVersion.objects.values_list(
                "item_id", "number", "content_hash", "published_at", "snapshot__creators").iterator()}


def publication_post(*, version) -> JournalEntry:
    """Chain a published version; call in the transaction that publishes it."""
    title = version.snapshot.get("title", "")
    memo = f"v{version.number} {title}"[:200]
    return entry_post(tenant=version.tenant, kind=JournalEntry.Kind.PUBLICATION, postings=[], memo=memo,
                      record=publication_record(item_id=version.item_id, number=version.number,
                                                content_hash=version.content_hash,
                                                creators=version.snapshot.get("creators"),
                                                published_at=version.published_at))


def balance(*, account: LedgerAccount) -> int:
    return account.postings.aggregate(total=Sum("amount"))["total"] or 0


def balances(*, tenant: Tenant) -> dict[LedgerAccount, int]:
    """Every account's balance, derived from its postings (credit balances are negative)."""
    sums = dict(Posting.objects.values("account").annotate(total=Sum("amount")).values_list("account", "total"))
    return {account: sums.get(account.pk, 0) for account in LedgerAccount.objects.order_by("code", "currency")}


def _problem(message: str, **params) -> str:
    """A problem found by ``ledger_verify`` (``message`` marked with ``gettext_noop``), translated when it is read:
    the journal's admin page shows it inside a sentence in the team's language, the command in its own."""
    return lazy(lambda: gettext(message) % params, str)()


@dataclass
class VerifyResult:
    entries: int
    head: str
    broken_at: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def ledger_verify(*, tenant: Tenant) -> VerifyResult:
    """Recompute the tenant's chain from the first entry; stop at the first entry whose hash, link, sequence, balance,
    accounts or signed published head does not hold.

    The head is read first and nothing past it is, so a sale committing meanwhile (each query of a READ COMMITTED
    transaction sees what has committed by then) is not taken for tampering. The published heads are read before it:
    any of them then names a sequence the head has reached.
    """
    # Versions read before the head have their publication entry at or below it (both commit together); those read
    # after it include every version an entry up to the head records.
    versions_before = set(ItemVersion.objects.values_list("item_id", "number"))
    published: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for on, sequence, digest in ChainHeadPublication.objects.values_list("published_on", "sequence", "hash"):
        published[sequence].append((on.isoformat(), digest))
    head = LedgerHead.objects.first()
    last = head.sequence if head else 0
    accounts = {pk: (code, currency) for pk, code, currency in
                LedgerAccount.objects.values_list("pk", "code", "currency")}
    chain = JournalEntry.objects.filter(sequence__lte=last)
    postings_of: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    foreign: dict[int, str] = {}
    # Account codes come from this tenant's accounts, not from a join: a posting moved to another tenant's account
    # with the same code ("platform", "tax") would otherwise hash the same.
    for entry_id, account_id, currency, amount in Posting.objects.filter(entry__in=chain).values_list(
            "entry_id", "account_id", "currency", "amount").iterator(chunk_size=5000):
        if account_id not in accounts:
            foreign.setdefault(entry_id, _problem(gettext_noop(
                "one of its postings is on an account of another storefront")))
        elif accounts[account_id][1] != currency:
            foreign.setdefault(entry_id, _problem(gettext_noop("one of its postings is not in its account's currency")))
        else:
            postings_of[entry_id].append((accounts[account_id][0], currency, amount))
    versions = _version_records()
    recorded: set[tuple[int, int]] = set()
    previous, expected_sequence, count = GENESIS_HASH, 1, 0
    for entry in chain.select_related("order").order_by("sequence").iterator(chunk_size=2000):
        count += 1
        rows = postings_of.get(entry.pk, [])
        problem = ""
        if entry.sequence != expected_sequence:
            problem = _problem(gettext_noop("sequence %(found)s where %(expected)s was expected (an entry is missing)"),
                               found=entry.sequence, expected=expected_sequence)
        elif entry.previous_hash != previous:
            problem = _problem(gettext_noop("it does not link to the entry before it"))
        elif entry.pk in foreign:
            problem = foreign[entry.pk]
        else:
            sums: dict[str, int] = defaultdict(int)
            for _code, currency, amount in rows:
                sums[currency] += amount
            publication = entry.kind == JournalEntry.Kind.PUBLICATION
            key = (entry.record.get("item"), entry.record.get("version")) if isinstance(entry.record, dict) else None
            if publication and (rows or entry.record_digest != record_digest(entry.record) or key is None):
                problem = _problem(gettext_noop("its publication record does not match its digest"))
            elif not publication and (not rows or any(sums.values()) or entry.record or entry.record_digest):
                problem = _problem(gettext_noop("its postings do not balance"))
            elif entry.hash != entry_hash(
                    tenant_slug=tenant.slug, sequence=entry.sequence, kind=entry.kind, memo=entry.memo,
                    order_number=entry.order.number if entry.order else "", created_at=_timestamp(entry.created_at),
                    previous_hash=entry.previous_hash, postings=rows, record_digest=entry.record_digest):
                problem = _problem(gettext_noop(
                    "its content does not match its hash (it was changed after it was written)"))
            elif publication and versions.get(key) != entry.record:
                problem = _problem(gettext_noop("version %(version)s of the item it records as published was changed "
                                                "or removed since"), version=key[1])
            else:
                problem = next((_problem(gettext_noop("it differs from the head published on %(date)s"), date=at)
                                for at, digest in published.get(entry.sequence, []) if digest != entry.hash), "")
            if publication:
                recorded.add(key)
        if problem:
            return VerifyResult(entries=count, head=previous, broken_at=entry.sequence, problem=problem)
        previous, expected_sequence = entry.hash, expected_sequence + 1
    if head is not None and (head.sequence, head.hash) != (expected_sequence - 1, previous):
        return VerifyResult(entries=count, head=previous, broken_at=head.sequence,
                            problem=_problem(gettext_noop(
                                "the chain head does not match the last entry (entries were removed)")))
    beyond = sorted(sequence for sequence in published if sequence >= expected_sequence)
    if beyond:
        return VerifyResult(entries=count, head=previous, broken_at=beyond[0],
                            problem=_problem(gettext_noop(
                                "it was published on %(date)s but is missing (entries were removed)"),
                                date=published[beyond[0]][0][0]))
    # Each of these is one query, so one snapshot, and an append moves the head in the entry's own transaction: an
    # entry past the head was not appended by entry_post, and postings outside the chain would count in the balances
    # without being hashed anywhere.
    current_head = Coalesce(Subquery(LedgerHead.objects.values("sequence")[:1]), 0)
    stray = JournalEntry.objects.filter(sequence__gt=current_head).order_by("sequence").first()
    if stray is not None:
        return VerifyResult(entries=count, head=previous, broken_at=stray.sequence,
                            problem=_problem(gettext_noop(
                                "it lies beyond the chain head (an entry was added behind the ledger's back)")))
    if Posting.objects.exclude(entry__in=JournalEntry.objects.all()).exists():
        return VerifyResult(entries=count, head=previous, broken_at=last,
                            problem=_problem(gettext_noop(
                                "postings of this storefront belong to no entry of its chain")))
    unrecorded = sorted(versions_before - recorded)
    if unrecorded:
        return VerifyResult(entries=count, head=previous, broken_at=last,
                            problem=_problem(gettext_noop(
                                "version %(version)s of item %(item)s was published but is not in the chain"),
                                version=unrecorded[0][1], item=unrecorded[0][0]))
    return VerifyResult(entries=count, head=previous)


def statement_proof(*, tenant: Tenant, accounts: list[LedgerAccount]) -> dict:
    """A participant's verifiable statement: every entry from their first one to the chain head.

    Entries that touch their accounts carry all their postings (the participant sees how each of their sales was
    shared), and the publications of a creator's items carry their record (the version, its content hash, its
    creators and their shares, when); the others carry only the digests, which is enough to recompute the chain. The
    head is read first and nothing past it is, so a sale committing meanwhile does not break the statement.

    A participant without entries yet gets the newest entry: the script takes a head only as the last entry shown
    (a head with nothing under it could claim any sequence), so only an empty chain has a statement without entries.
    """
    head = LedgerHead.objects.first()
    last = head.sequence if head else 0
    mine = set(Posting.objects.filter(account__in=accounts, entry__sequence__lte=last)
               .values_list("entry_id", flat=True))
    creators = {a.creator_id for a in accounts if a.creator_id}
    if creators:
        mine |= {pk for pk, record in JournalEntry.objects.filter(
            kind=JournalEntry.Kind.PUBLICATION, sequence__lte=last).values_list("pk", "record")
            if creators & {creator for creator, _share in record.get("creators", [])}}
    document = {"tenant": tenant.slug, "accounts": sorted(a.code for a in accounts),
                "head": {"sequence": last, "hash": head.hash if head else GENESIS_HASH},
                "entries": []}
    if not last:
        return document
    first = (JournalEntry.objects.filter(pk__in=mine).order_by("sequence").values_list("sequence", flat=True)[0]
             if mine else last)
    postings_of: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for entry_id, code, currency, amount in Posting.objects.filter(
            entry__sequence__gte=first, entry__sequence__lte=last).values_list(
            "entry_id", "account__code", "currency", "amount"):
        postings_of[entry_id].append((code, currency, amount))
    entries = JournalEntry.objects.filter(sequence__gte=first, sequence__lte=last)
    for entry in entries.select_related("order").order_by("sequence"):
        rows = postings_of[entry.pk]
        item = entry_document(tenant_slug=tenant.slug, sequence=entry.sequence, kind=entry.kind, memo=entry.memo,
                              order_number=entry.order.number if entry.order else "",
                              created_at=_timestamp(entry.created_at), previous_hash=entry.previous_hash,
                              digest=postings_digest(rows), record_digest=entry.record_digest)
        item["hash"] = entry.hash
        if entry.pk in mine and entry.record is not None:
            item["record"] = entry.record
        elif entry.pk in mine:
            item["postings"] = sorted([code, currency, amount] for code, currency, amount in rows)
        document["entries"].append(item)
    return document
