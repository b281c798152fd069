"""From held shares to money paid out.

Creators, promoters and partner platforms are paid the same way ("payees" below). A sale credits each payee's *held*
account. When the storefront's refund window has passed, ``shares_release`` moves what the order still owes each
payee (after any refunds) to their *payable* account. A payout run pays every payable balance: one payout entry per
payee books the money as paid out. Statements are read straight from the postings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write

from . import ledger
from .models import JournalEntry, LedgerAccount, Order, Payout, Posting
from .services import payment_settings

PAYEE_KINDS = (LedgerAccount.Kind.CREATOR, LedgerAccount.Kind.PROMOTER, LedgerAccount.Kind.PARTNER)
PAYEE_LABELS = {LedgerAccount.Kind.CREATOR: _("creator"), LedgerAccount.Kind.PROMOTER: _("promoter"),
                LedgerAccount.Kind.PARTNER: _("partner platform")}


def shares_release(*, tenant, now: datetime | None = None) -> int:
    """Release the shares of orders paid before the refund window; returns how many orders. Safe to repeat."""
    now = now or timezone.now()
    window = timedelta(days=payment_settings(tenant=tenant).refund_window_days)
    due = Order.objects.filter(paid_at__lte=now - window, shares_released_at__isnull=True,
                               status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED, Order.Status.REFUNDED])
    released = 0
    for order_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order_id)
            if order.shares_released_at is not None:
                continue
            held = (Posting.objects.filter(entry__order=order, account__kind__in=PAYEE_KINDS,
                                           account__code__endswith=":held")
                    .values("account").annotate(total=Sum("amount")))
            postings = []
            for row in held:
                if row["total"]:
                    account = LedgerAccount.objects.get(pk=row["account"])
                    payable = ledger.account_for(
                        tenant=tenant, code=account.code.replace(":held", ":payable"), kind=account.kind,
                        currency=account.currency, name=account.name.replace("(held)", "(payable)"),
                        creator_id=account.creator_id, promoter_id=account.promoter_id,
                        partner_id=account.partner_id)
                    postings += [(account, -row["total"]), (payable, row["total"])]
            if postings:
                ledger.entry_post(tenant=tenant, kind=JournalEntry.Kind.RELEASE, postings=postings, order=order,
                                  memo=f"Release {order.number}")
            order.shares_released_at = now
            order.save(update_fields=["shares_released_at"])
            released += 1
    return released


@dataclass
class StatementLine:
    sequence: int
    kind: str
    created_at: datetime
    memo: str
    amount: int
    entry_hash: str
    held: bool = False  # on the payee's held account (else their payable one)
    order_number: str = ""


@dataclass
class Statement:
    """What one payee was credited, released and paid, with the chain head that lets them verify it."""

    kind: str  # one of PAYEE_KINDS
    party_id: int
    name: str
    currency: str
    held: int = 0
    payable: int = 0
    paid: int = 0
    lines: list[StatementLine] = field(default_factory=list)
    chain_head: str = ""
    chain_sequence: int = 0

    @property
    def entries(self) -> list[dict]:
        """The lines by journal entry, newest first, each with what it moved on the held and the payable account:
        a release is one row (held down, payable up), not two lines that cancel out."""
        rows: dict[int, dict] = {}
        for line in self.lines:
            row = rows.setdefault(line.sequence, {
                "sequence": line.sequence, "created_at": line.created_at, "order_number": line.order_number,
                "kind": JournalEntry.Kind(line.kind).label, "held": 0, "payable": 0})
            row["held" if line.held else "payable"] += line.amount
        return sorted(rows.values(), key=lambda row: row["sequence"], reverse=True)

    @property
    def owed_back(self) -> int:
        """What the payee owes the storefront: a refund took back more than was left payable after a payout."""
        return max(0, -self.payable)

    @property
    def kind_label(self) -> str:
        return PAYEE_LABELS[self.kind]


def statements(*, tenant, kind: str | None = None, party_id: int | None = None) -> list[Statement]:
    """Payees' statements (all, one kind, or one payee); amounts are what the storefront owes them. The chain head
    is read first and nothing past it is, so a sale committing meanwhile is not in a statement that ends before it."""
    from .models import LedgerHead

    head = LedgerHead.objects.first()
    found: dict[tuple[str, int, str], Statement] = {}
    postings = Posting.objects.filter(account__kind__in=[kind] if kind else PAYEE_KINDS,
                                      entry__sequence__lte=head.sequence if head else 0)
    if party_id is not None:
        postings = postings.filter(**{f"account__{kind}_id": party_id})
    for posting in postings.select_related("account__creator", "account__promoter__user", "account__partner",
                                           "entry__order").order_by("entry__sequence", "id"):
        account = posting.account
        party = account.payee
        st = found.setdefault((account.kind, party.pk, posting.currency), Statement(
            kind=account.kind, party_id=party.pk, name=account.payee_name, currency=posting.currency,
            chain_head=head.hash if head else "", chain_sequence=head.sequence if head else 0))
        owed, held = -posting.amount, account.code.endswith(":held")
        if held:
            st.held += owed
        else:
            st.payable += owed
        if posting.entry.kind == JournalEntry.Kind.PAYOUT:
            st.paid += posting.amount
        st.lines.append(StatementLine(sequence=posting.entry.sequence, kind=posting.entry.kind,
                                      created_at=posting.entry.created_at, memo=posting.entry.memo, amount=owed,
                                      entry_hash=posting.entry.hash, held=held,
                                      order_number=posting.entry.order.number if posting.entry.order else ""))
    return sorted(found.values(), key=lambda st: (st.kind, st.name))


def creator_statements(*, tenant) -> list[Statement]:
    return statements(tenant=tenant, kind=LedgerAccount.Kind.CREATOR)


def payable_balances(*, tenant) -> list[tuple[LedgerAccount, int]]:
    """Each payee account with a balance to pay now, and that amount: what a payout run would pay."""
    owed = {row["account"]: -row["total"] for row in (
        Posting.objects.filter(account__kind__in=PAYEE_KINDS, account__code__endswith=":payable")
        .values("account").annotate(total=Sum("amount")))}
    accounts = (LedgerAccount.objects.filter(pk__in=[pk for pk, amount in owed.items() if amount > 0])
                .select_related("creator", "promoter__user", "partner").order_by("pk"))
    return [(account, owed[account.pk]) for account in accounts]


def payables_fingerprint(balances: list[tuple[LedgerAccount, int]]) -> str:
    """Names exactly the balances a payout run would pay, so that a run confirmed on what the team saw pays that."""
    return hashlib.sha256(";".join(f"{account.pk}:{amount}" for account, amount in balances).encode()).hexdigest()


def payout_run(*, tenant, actor, reference: str = "", seen: str | None = None) -> list[Payout]:
    """Pay every payee's payable balance: one payout entry and one Payout row each. Safe to repeat (a second run
    finds nothing payable). ``seen`` is the ``payables_fingerprint`` of the balances the team confirmed: when they
    have changed since (a release or a refund came in between), nothing is paid."""
    payouts = []
    with transaction.atomic():
        from .models import LedgerHead

        # The head lock serialises payout runs with every other append of this tenant.
        LedgerHead.objects.get_or_create(tenant=tenant)
        LedgerHead.objects.select_for_update().get(tenant=tenant)
        balances = payable_balances(tenant=tenant)
        if seen is not None and seen != payables_fingerprint(balances):
            raise ApplicationError(_("The payable balances changed since you looked at them: check them again."),
                                   code="payables_changed", status=409)
        for account, owed in balances:
            clearing = ledger.account_for(tenant=tenant, code="payouts", kind=LedgerAccount.Kind.PAYOUT,
                                          currency=account.currency, name="Paid out")
            entry = ledger.entry_post(tenant=tenant, kind=JournalEntry.Kind.PAYOUT,
                                      postings=[(account, owed), (clearing, -owed)],
                                      memo=f"Payout to {account.code} {reference}".strip())
            payouts.append(Payout.objects.create(
                tenant=tenant, creator_id=account.creator_id, promoter_id=account.promoter_id,
                partner_id=account.partner_id, amount=owed, currency=account.currency, entry=entry,
                reference=reference, created_by=actor if getattr(actor, "is_authenticated", False) else None))
        audit_log_write(tenant=tenant, actor=actor, action="payments.payout_run",
                        data={"payouts": len(payouts), "total": sum(p.amount for p in payouts),
                              "reference": reference})
    return payouts
