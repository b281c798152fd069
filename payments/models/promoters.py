"""Promoters (推广员): learners who bring others and earn a commission on what those others buy.

A promoter shares a referral link or code. Each visit through it is a ``ReferralTouch``; a sale is attributed to the
last touch inside the storefront's attribution window. The promoter who recruited that promoter earns the optional
second-level commission; there is never a third level (Chinese law and WeChat's rules forbid deeper chains).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned


class Promoter(TenantOwned):
    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        SUSPENDED = "suspended", _("Suspended")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promoter_profiles",
                             verbose_name=_("learner"))
    code = models.CharField(_("referral code"), max_length=16, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.APPLIED)
    recruited_by = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="recruits", verbose_name=_("recruited by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("promoter")
        verbose_name_plural = _("promoters")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="promoter_code_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "user"], name="one_promoter_profile_per_learner"),
            models.CheckConstraint(condition=~Q(recruited_by=models.F("id")), name="promoter_not_own_recruiter"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.code})"


class ReferralTouch(TenantOwned):
    """One visit through a promoter's link, or a code typed at checkout: the evidence behind a commission."""

    class Source(models.TextChoices):
        LINK = "link", _("Referral link")
        CODE = "code", _("Code at checkout")

    promoter = models.ForeignKey(Promoter, on_delete=models.PROTECT, related_name="touches",
                                 verbose_name=_("promoter"))
    source = models.CharField(_("source"), max_length=5, choices=Source.choices)
    visitor = models.CharField(_("visitor"), max_length=64, blank=True,
                               help_text=_("The browser's anonymous visitor id."))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("learner"))
    landing_path = models.CharField(_("landing page"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("referral touch")
        verbose_name_plural = _("referral touches")

    def __str__(self) -> str:
        who = self.user if self.user_id else gettext("an anonymous visitor")
        when = f"{timezone.localtime(self.created_at):%Y-%m-%d}" if self.created_at else ""
        return gettext("Code %(code)s for %(who)s, %(date)s") % {"code": self.promoter.code, "who": who,
                                                                 "date": when}
