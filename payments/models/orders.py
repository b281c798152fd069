"""Selling: the storefront's payment settings and split rules, coupons, orders with lines, payment attempts, refunds
and the provider events that moved them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned
from marketplace.money import format_money


class PaymentSettings(TenantOwned):
    """How a storefront charges: its tax and how long a sale can be refunded before shares become payable."""

    tax_rate_bp = models.PositiveIntegerField(
        _("tax rate (basis points)"), default=0, validators=[MaxValueValidator(10000)],
        help_text=_("600 is 6%. Tax goes to its own ledger account and is never shared with creators or promoters."))
    prices_include_tax = models.BooleanField(
        _("prices include tax"), default=True,
        help_text=_("On: the price shown is what the learner pays. Off: tax is added at checkout."))
    refund_window_days = models.PositiveIntegerField(
        _("refund window (days)"), default=14, validators=[MaxValueValidator(3650)],
        help_text=_("Creators' shares and commissions are held this long, then become payable."))
    promoters_enabled = models.BooleanField(_("promoter programme"), default=False,
                                            help_text=_("Learners may apply to promote the storefront."))
    attribution_window_days = models.PositiveIntegerField(
        _("attribution window (days)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("A sale counts for the promoter whose link or code the learner used last, within this window."))
    self_referral_allowed = models.BooleanField(
        _("promoters earn on their own purchases"), default=False)
    renewal_commissions = models.BooleanField(
        _("commissions on renewals"), default=False,
        help_text=_("The promoter or partner who brought a subscription also earns their commission on each renewal, "
                    "while they are still approved. Off: only the first payment earns it."))

    class Meta:
        verbose_name = _("payment settings")
        verbose_name_plural = _("payment settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_payment_settings_per_tenant")]

    def __str__(self) -> str:
        return str(_("Payment settings"))


class SplitRule(TenantOwned):
    """One version of how a sale is shared. Versions are never edited: a change is a new version, and every order
    records the version that split it."""

    version = models.PositiveIntegerField(_("version"), editable=False)
    platform_fee_bp = models.PositiveIntegerField(_("platform fee (basis points)"), default=1000,
                                                  validators=[MaxValueValidator(10000)])
    partner_commission_bp = models.PositiveIntegerField(_("partner commission (basis points)"), default=0,
                                                        validators=[MaxValueValidator(10000)])
    promoter_commission_bp = models.PositiveIntegerField(_("promoter commission (basis points)"), default=0,
                                                         validators=[MaxValueValidator(10000)])
    promoter_second_level_bp = models.PositiveIntegerField(
        _("second-level promoter commission (basis points)"), default=0, validators=[MaxValueValidator(10000)],
        help_text=_("Paid to whoever recruited the promoter who made the sale. There is no third level."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+", editable=False, verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = _("split rule")
        verbose_name_plural = _("split rules")
        constraints = [models.UniqueConstraint(fields=["tenant", "version"], name="one_split_rule_per_version")]

    def __str__(self) -> str:
        return f"v{self.version}"


class Coupon(TenantOwned):
    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percent off")
        FIXED = "fixed", _("Fixed amount off")

    code = models.CharField(_("code"), max_length=40, help_text=_("Learners type it at checkout; not case-sensitive."))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.PERCENT)
    value = models.PositiveIntegerField(
        _("value"), help_text=_("Basis points for a percentage (2000 is 20%), minor units for a fixed amount."))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="coupons", verbose_name=_("only for this item"))
    max_uses = models.PositiveIntegerField(_("maximum uses"), null=True, blank=True)
    used_count = models.PositiveIntegerField(_("used"), default=0, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="coupon_code_per_tenant"),
            models.CheckConstraint(condition=~Q(kind="percent") | Q(value__lte=10000), name="percent_at_most_100"),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        if self.kind == self.Kind.FIXED:
            self.charge_step_check("value")


class Order(TenantOwned):
    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting payment")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Payment failed")
        CANCELLED = "cancelled", _("Cancelled")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partly refunded")
        REFUNDED = "refunded", _("Refunded")

    number = models.CharField(_("number"), max_length=20, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders",
                             verbose_name=_("learner"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(_("currency"), max_length=3)
    subtotal = models.PositiveBigIntegerField(_("subtotal"))
    discount = models.PositiveBigIntegerField(_("discount"), default=0)
    tax = models.PositiveBigIntegerField(_("tax"), default=0)
    total = models.PositiveBigIntegerField(_("total"))
    refunded = models.PositiveBigIntegerField(_("refunded"), default=0)
    tax_rate_bp = models.PositiveIntegerField(_("tax rate (basis points)"), default=0)
    prices_include_tax = models.BooleanField(_("prices include tax"), default=True)
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="orders",
                               verbose_name=_("coupon"))
    split_rule = models.ForeignKey(SplitRule, on_delete=models.PROTECT, related_name="orders",
                                   verbose_name=_("split rule"))
    idempotency_key = models.CharField(_("checkout attempt key"), max_length=100)
    source = models.CharField(_("source"), max_length=20, choices=[("storefront", _("Storefront checkout")),
                                                                   ("renewal", _("Subscription renewal"))],
                              default="storefront")
    promoter = models.ForeignKey("payments.Promoter", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="orders", verbose_name=_("promoter"))
    promoter_second_level = models.ForeignKey("payments.Promoter", on_delete=models.PROTECT, null=True, blank=True,
                                              related_name="second_level_orders",
                                              verbose_name=_("second-level promoter"))
    partner = models.ForeignKey("distribution.Channel", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="partner_orders", verbose_name=_("partner"),
                                help_text=_("The partner platform that brought the sale and earns its commission."))
    attribution = models.JSONField(_("attribution evidence"), default=dict, blank=True)
    channel = models.ForeignKey("distribution.Channel", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="orders", verbose_name=_("channel"),
                                help_text=_("The distribution channel whose tracked link brought the learner."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    shares_released_at = models.DateTimeField(
        _("shares payable since"), null=True, blank=True, editable=False,
        help_text=_("When the refund window closed and creators' shares moved from held to payable."))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="one_order_per_checkout_attempt"),
            models.UniqueConstraint(fields=["tenant", "number"], name="order_number_per_tenant"),
            models.CheckConstraint(condition=Q(refunded__lte=models.F("total")), name="refunded_at_most_total"),
            models.CheckConstraint(condition=Q(total=models.F("subtotal") - models.F("discount") + models.F("tax"))
                                   | Q(prices_include_tax=True, total=models.F("subtotal") - models.F("discount")),
                                   name="order_total_adds_up"),
            # One channel brought the sale: a partner platform or a promoter, never both.
            models.CheckConstraint(condition=Q(partner__isnull=True) | Q(promoter__isnull=True),
                                   name="one_commission_channel"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def net(self) -> int:
        """What is shared out: the total without tax."""
        return self.total - self.tax


class OrderLine(TenantOwned):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="lines", verbose_name=_("order"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="order_lines", verbose_name=_("item"))
    bundle = models.ForeignKey("catalog.Bundle", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="order_lines", verbose_name=_("bundle"))
    plan = models.ForeignKey("payments.SubscriptionPlan", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="order_lines", verbose_name=_("subscription plan"))
    subscription = models.ForeignKey("payments.Subscription", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="order_lines", help_text="Set on a renewal's line.",
                                     verbose_name=_("subscription"))
    title = models.CharField(_("title"), max_length=200)
    unit_price = models.PositiveBigIntegerField(_("unit price"))
    interval = models.CharField(_("billing period"), max_length=5, blank=True,
                                help_text="A plan's line: the billing period its price pays for, as sold.")
    discount = models.PositiveBigIntegerField(_("discount"), default=0)
    tax = models.PositiveBigIntegerField(_("tax"), default=0)
    total = models.PositiveBigIntegerField(_("total"))
    shares = models.JSONField(
        _("creators' shares"), null=True, blank=True, editable=False,
        help_text="An item's or a bundle's line, or a plan's shared with creators: its items with their weights and "
                  "creators' shares, as sold ([[item, weight, [[creator, share bp], ...]], ...]; from each item's "
                  "published version; a plan's items credited alike are one [null, weight, [...]]).")

    class Meta:
        ordering = ["id"]
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(item__isnull=False, bundle__isnull=True, plan__isnull=True)
                                   | Q(item__isnull=True, bundle__isnull=False, plan__isnull=True)
                                   | Q(item__isnull=True, bundle__isnull=True, plan__isnull=False),
                                   name="line_sells_one_thing"),
        ]

    def __str__(self) -> str:
        return self.title


class Payment(TenantOwned):
    """One attempt to collect an order's total through a provider.

    pending -> succeeded | failed | cancelled; a succeeded payment can then be refunded, in parts, never beyond
    what it captured.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    TRANSITIONS = {Status.PENDING: {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}}
    EXPIRED = "checkout expired"  # the failure reason of a checkout closed because its time ran out
    UNBUYABLE = "can no longer be bought"  # ... closed because the learner got what it buys meanwhile
    REPLACED = "replaced by a new checkout"  # ... closed by the learner's newer checkout of the same thing

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order"))
    provider = models.CharField(_("provider"), max_length=20)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    amount = models.PositiveBigIntegerField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    refunded_amount = models.PositiveBigIntegerField(_("refunded"), default=0)
    provider_ref = models.CharField(_("provider reference"), max_length=200, blank=True)
    # What the provider charged, when it differs from the checkout reference (Stripe: the PaymentIntent of a
    # Checkout Session), for refunds.
    provider_charge_ref = models.CharField(_("provider charge reference"), max_length=200, blank=True)
    failure_reason = models.CharField(_("why it failed"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_ref"], condition=~Q(provider_ref=""),
                                    name="provider_reference_once"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=models.F("amount")),
                                   name="refunds_at_most_captured"),
        ]
        indexes = [models.Index(fields=["provider", "provider_charge_ref"], condition=~Q(provider_charge_ref=""),
                                name="payment_by_charge")]

    def __str__(self) -> str:
        return f"{self.provider} {format_money(self.amount, self.currency)} ({self.get_status_display()})"

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded_amount if self.status == self.Status.SUCCEEDED else 0

    @property
    def expires_at(self):
        """When the checkout stops taking payment: ``CHECKOUT_EXPIRES_MINUTES`` after it started."""
        return self.created_at + timedelta(minutes=settings.CHECKOUT_EXPIRES_MINUTES)

    @property
    def is_overdue(self) -> bool:
        """Still pending past ``expires_at``: to be expired, not paid."""
        return self.status == self.Status.PENDING and timezone.now() >= self.expires_at


class Refund(TenantOwned):
    # The reason of the refund given back by itself when a payment bought only what the learner already owned.
    PAID_TWICE = "already owned: paid twice"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds",
                                verbose_name=_("payment"))
    amount = models.PositiveBigIntegerField(_("amount"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    provider_ref = models.CharField(_("provider reference"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The provider could not pay it out (a closed card, say) and put the money back: the refund is undone.
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)
    failure_reason = models.CharField(_("why it failed"), max_length=100, blank=True)
    paid_outside = models.BooleanField(_("paid back outside the provider"), default=False,
                                       help_text=_("By bank transfer or cash: the provider was not asked."))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_is_positive"),
            # A refund the provider reports (its dashboard's, or ours coming back as an event) is booked once.
            models.UniqueConstraint(fields=["payment", "provider_ref"], condition=~Q(provider_ref=""),
                                    name="provider_refund_once"),
        ]

    def __str__(self) -> str:
        payment = self.payment
        return gettext("Refund of %(amount)s on %(order)s") % {
            "amount": format_money(self.amount, payment.currency), "order": payment.order.number}

    @property
    def is_paid_twice(self) -> bool:
        return self.reason == self.PAID_TWICE


class WebhookEvent(TenantOwned):
    """A provider event, stored in the transaction that applied it: its id can never be applied twice."""

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event ID"), max_length=200)
    type = models.CharField(_("event type"), max_length=100)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "provider", "event_id"], name="event_applied_once")]
