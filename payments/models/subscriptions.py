"""Subscriptions: a plan gives the whole catalog for a month or a year.

Renewal is a new order for the next period, opened when the period ends. Until it is paid the subscription is past
due and access continues through a grace period; a cancelled subscription runs to the end of the period it paid for.
Renewals keep the price (and its currency) and the billing period the learner subscribed at, even after the storefront
changes its plans, prices or currency, and end their periods on the day of the month they started on.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned


class SubscriptionPlan(TenantOwned):
    class Interval(models.TextChoices):
        MONTH = "month", _("Monthly")
        YEAR = "year", _("Yearly")

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)
    interval = models.CharField(_("billing period"), max_length=5, choices=Interval.choices, default=Interval.MONTH)
    price = models.PositiveIntegerField(_("price per period"), help_text=_("In the currency's minor unit."))
    categories = models.ManyToManyField(
        "catalog.Category", blank=True, related_name="subscription_plans",
        verbose_name=_("tier: only these categories"),
        help_text=_("Leave empty for the whole catalog; choose categories to sell a tier."))
    grace_days = models.PositiveIntegerField(
        _("grace period (days)"), default=3, validators=[MaxValueValidator(365)],
        help_text=_("How long access continues after a renewal is due but not yet paid."))
    creators_share = models.BooleanField(
        _("shared with creators"), default=False,
        help_text=_("Each payment for the plan is shared with the creators of the paid items it gives access to, as a "
                    "bundle's is: divided between those items by their prices, each item's creators taking their "
                    "shares of its part after the platform fee and commissions. A renewal is shared between the items "
                    "the plan covers when it is renewed. Off, the storefront keeps what the fee and commissions "
                    "leave."))
    is_active = models.BooleanField(
        _("on sale"), default=True,
        help_text=_("Off sale, the plan takes no new subscribers; those it has keep renewing until they cancel or "
                    "the team stops their renewals (Subscriptions, “Stop renewing at period end”)."))

    class Meta:
        ordering = ["price"]
        verbose_name = _("subscription plan")
        verbose_name_plural = _("subscription plans")
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="plan_slug_per_tenant")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.charge_step_check("price")


class Subscription(TenantOwned):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Renewal due")
        ENDED = "ended", _("Ended")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions",
                             verbose_name=_("learner"))
    plan = models.ForeignKey(SubscriptionPlan, on_delete=models.PROTECT, related_name="subscriptions",
                             verbose_name=_("subscription plan"))
    price = models.PositiveIntegerField(
        _("price per period"), help_text=_("What each renewal charges: the plan's price when the learner subscribed."))
    currency = models.CharField(
        _("currency"), max_length=3,
        help_text=_("The currency of the price: the storefront's when the learner subscribed. Renewals charge in it."))
    interval = models.CharField(
        _("billing period"), max_length=5, choices=SubscriptionPlan.Interval.choices,
        help_text=_("The period the price pays for: the plan's when the learner subscribed. Renewals keep it."))
    billing_day = models.PositiveSmallIntegerField(
        _("billing day"), help_text=_("Periods end on this day of the month (or the month's last day)."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_period_start = models.DateTimeField(_("period starts"))
    current_period_end = models.DateTimeField(_("period ends"))
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    switch_to = models.ForeignKey(
        SubscriptionPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("switches to"),
        help_text=_("The plan the learner chose to renew on: the next renewal charges its price for its period."))
    grace_until = models.DateTimeField(_("grace until"), null=True, blank=True)
    renewal_order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="+", help_text=_("The open renewal, while one is due."),
                                      verbose_name=_("renewal order"))
    entitlement = models.ForeignKey("payments.Entitlement", on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("entitlement"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], condition=~Q(status="ended"),
                                    name="one_live_subscription_per_learner"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.plan}"
