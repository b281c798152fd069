"""What a learner is entitled to open, and why.

An entitlement is the one record ``catalog.access.can_access`` reads: a purchase of an item or a bundle, a
subscription to the whole catalog, a grant by the storefront's team, or a licence from another storefront. A paid
order creates one per line; a full refund revokes them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned


class Entitlement(TenantOwned):
    class Source(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        SUBSCRIPTION = "subscription", _("Subscription")
        GRANT = "grant", _("Granted by the team")
        SYNDICATION = "syndication", _("Licensed from another storefront")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entitlements",
                             verbose_name=_("learner"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="entitlements", verbose_name=_("item"))
    bundle = models.ForeignKey("catalog.Bundle", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="entitlements", verbose_name=_("bundle"))
    whole_catalog = models.BooleanField(_("whole catalog"), default=False)
    plan = models.ForeignKey("payments.SubscriptionPlan", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="entitlements", verbose_name=_("subscription tier"),
                             help_text=_("Everything in the tier's categories."))
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.GRANT)
    order = models.ForeignKey("payments.Order", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="entitlements", editable=False, verbose_name=_("order"))
    reference = models.CharField(_("reference"), max_length=100, blank=True,
                                 help_text=_("The order, subscription or licence that gave this access."))
    starts_at = models.DateTimeField(_("starts"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True, help_text=_("Empty: no end."))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        constraints = [
            models.CheckConstraint(
                condition=(Q(item__isnull=False, bundle__isnull=True, whole_catalog=False, plan__isnull=True)
                           | Q(item__isnull=True, bundle__isnull=False, whole_catalog=False, plan__isnull=True)
                           | Q(item__isnull=True, bundle__isnull=True, whole_catalog=True, plan__isnull=True)
                           | Q(item__isnull=True, bundle__isnull=True, whole_catalog=False, plan__isnull=False)),
                name="entitlement_covers_one_thing",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "user"], name="entitlement_by_learner")]

    def __str__(self) -> str:
        target = self.item or self.bundle or self.plan or _("whole catalog")
        return f"{self.user} → {target}"
