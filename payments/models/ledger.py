"""The ledger: double-entry, append-only, and hash-chained per tenant.

Every money movement is a ``JournalEntry`` whose ``Posting`` rows sum to zero per currency (debits positive, credits
negative). Nothing is ever updated or deleted; a correction is a reversing entry. Each entry carries the hash of the
tenant's previous entry, so anyone holding the newest hash (the chain head) can check that history was not
rewritten. ``LedgerHead`` is the row appends lock, which keeps each tenant's sequence gapless.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned
from marketplace.money import format_money

GENESIS_HASH = "0" * 64


class LedgerAccount(TenantOwned):
    """A balance of one participant for one purpose in one currency. Balances are sums of postings, never stored."""

    class Kind(models.TextChoices):
        CLEARING = "clearing", _("Money held by a payment provider")
        PLATFORM = "platform", _("Platform fee")
        TENANT = "tenant", _("Storefront revenue")
        CREATOR = "creator", _("Creator share")
        PARTNER = "partner", _("Partner commission")
        PROMOTER = "promoter", _("Promoter commission")
        TAX = "tax", _("Tax collected")
        PAYOUT = "payout", _("Paid out")

    code = models.CharField(_("account code"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    name = models.CharField(_("name"), max_length=200)
    creator = models.ForeignKey("catalog.Creator", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="ledger_accounts", verbose_name=_("creator"))
    promoter = models.ForeignKey("payments.Promoter", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="ledger_accounts", verbose_name=_("promoter"))
    partner = models.ForeignKey("distribution.Channel", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="ledger_accounts", verbose_name=_("partner"))

    class Meta:
        ordering = ["code"]
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [models.UniqueConstraint(fields=["tenant", "code", "currency"], name="one_account_per_code")]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.currency})"

    @property
    def payee(self):
        """Whom the account's money is owed to, for a creator's, promoter's or partner's account."""
        return self.creator or self.promoter or self.partner

    @property
    def payee_name(self) -> str:
        """A creator's or partner's name, a promoter's email address; the account's own name for the others."""
        payee = self.payee
        if payee is None:
            return self.name
        return payee.user.email if self.promoter_id else payee.name

    @property
    def display_name(self) -> str:
        """The account's name in the reader's language: its kind, then whose it is (the creator or partner, the
        promoter's code, or the payment provider of a clearing account) and whether a payee's share is still held or
        already payable.

        ``name`` is English text written when the account was opened and stays as written, as the rest of the books
        do; the admin shows this instead. A promoter is named by their code, not their email address (erasing the
        person renames their accounts to the code too). Read the payee (``creator``, ``promoter``, ``partner``) with
        the account where many are shown."""
        kind = self.get_kind_display()
        if self.promoter_id:
            who = self.promoter.code
        elif self.payee is not None:
            who = self.payee.name
        elif self.kind == self.Kind.CLEARING and ":" in self.code:
            who = self.code.partition(":")[2]  # clearing:stripe
        else:
            return kind
        state = self.code.rpartition(":")[2]  # creator:7:held, creator:7:payable
        if state == "held":
            return gettext("%(kind)s: %(who)s (held)") % {"kind": kind, "who": who}
        if state == "payable":
            return gettext("%(kind)s: %(who)s (payable)") % {"kind": kind, "who": who}
        return gettext("%(kind)s: %(who)s") % {"kind": kind, "who": who}


class JournalEntry(TenantOwned):
    class Kind(models.TextChoices):
        SALE = "sale", _("Sale")
        REFUND = "refund", _("Refund")
        RELEASE = "release", _("Held shares become payable")
        PAYOUT = "payout", _("Payout")
        REVERSAL = "reversal", _("Reversal")
        PUBLICATION = "publish", _("Publication")

    sequence = models.PositiveBigIntegerField(_("sequence number"), editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="journal_entries", verbose_name=_("order"))
    refund = models.ForeignKey("payments.Refund", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="journal_entries", verbose_name=_("refund"))
    created_at = models.DateTimeField(_("created at"))
    # A publication entry moves no money: it records what was published (``ledger.publication_record``), and the
    # hash covers the record's digest.
    record = models.JSONField(_("publication record"), null=True, blank=True)
    record_digest = models.CharField(_("record digest"), max_length=64, blank=True, default="")
    previous_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        ordering = ["sequence"]
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sequence"], name="one_entry_per_sequence"),
            models.UniqueConstraint(fields=["tenant", "previous_hash"], name="one_successor_per_entry"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.get_kind_display()}"


class Posting(TenantOwned):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings",
                              verbose_name=_("journal entry"))
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings",
                                verbose_name=_("account"))
    amount = models.BigIntegerField(_("amount"), help_text=_("Debit positive, credit negative, in minor units."))
    currency = models.CharField(_("currency"), max_length=3)

    class Meta:
        ordering = ["id"]
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        indexes = [models.Index(fields=["account", "entry"], name="posting_by_account")]

    def __str__(self) -> str:
        # As the order page's ledger lists them. Read the account's payee with the posting where many are shown.
        return f"{self.account.display_name} {format_money(self.amount, self.currency)}"


class LedgerHead(TenantOwned):
    """The tenant's newest entry: locked by every append, read by anyone who wants to verify the chain."""

    sequence = models.PositiveBigIntegerField(_("sequence number"), default=0)
    hash = models.CharField(_("hash"), max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_ledger_head_per_tenant")]


class Payout(TenantOwned):
    """Money paid out to a creator, a promoter or a partner platform by a payout run, booked as a payout journal
    entry."""

    creator = models.ForeignKey("catalog.Creator", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="payouts", verbose_name=_("creator"))
    promoter = models.ForeignKey("payments.Promoter", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="payouts", verbose_name=_("promoter"))
    partner = models.ForeignKey("distribution.Channel", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="payouts", verbose_name=_("partner"))
    amount = models.PositiveBigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="payout",
                                 verbose_name=_("journal entry"))
    reference = models.CharField(_("reference"), max_length=100, blank=True,
                                 help_text=_("The bank transfer or payout batch."))
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")


class ChainHeadPublication(TenantOwned):
    """The tenant's chain head on a day, signed with the platform's Ed25519 key and published on the storefront.

    Anyone who saved a published head can later prove that no entry up to it was rewritten."""

    published_on = models.DateField(_("published on"))
    sequence = models.PositiveBigIntegerField(_("sequence number"))
    hash = models.CharField(_("hash"), max_length=64)
    signature = models.CharField(_("signature"), max_length=128)
    key_id = models.CharField(_("key ID"), max_length=16)
    public_key = models.CharField(_("public key"), max_length=64, blank=True,
                                  help_text=_("The Ed25519 key that signed it (base64)."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-published_on"]
        constraints = [models.UniqueConstraint(fields=["tenant", "published_on"], name="one_head_per_day")]
