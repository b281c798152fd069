"""Distribution: the channels a storefront pushes its content to, the deliveries that push it, what each platform
now shows, the traffic measured per channel and the allocation of the daily push budget between channels.

A ``Delivery`` is the unit of work and the outbox row at once: it is created in the transaction that follows a
publication, and a Celery task claims it, calls the channel's connector and records every attempt. The row, not
the broker, is the truth: a task lost with a killed worker is found again by the sweeper from the row's lease.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from marketplace.models import TenantOwned

CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
TRACKING_PARAM = "zc"  # the query parameter that carries a channel's code on every link it publishes


def new_channel_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


class Channel(TenantOwned):
    """A place a storefront publishes to: a WeChat official account, a Weibo account, a webhook, a feed, ..."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook (Standard Webhooks)")
        PARTNER = "partner", _("Partner platform")
        FEED = "feed", _("RSS and Atom feed")
        WECHAT = "wechat", _("WeChat official account")
        WEIBO = "weibo", _("Weibo")
        ZHIHU = "zhihu", _("Zhihu (export and mark as published)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    is_enabled = models.BooleanField(_("on"), default=True)
    code = models.CharField(_("tracking code"), max_length=16, default=new_channel_code, editable=False,
                            help_text=_("Marks every link this channel carries, and names its feed."))
    endpoint_url = models.URLField(_("endpoint URL"), blank=True, max_length=500,
                                   help_text=_("Where webhook and partner deliveries are POSTed."))
    credentials_encrypted = models.TextField(_("encrypted credentials"), editable=False, blank=True)
    credentials_hint = models.CharField(_("credentials"), max_length=200, editable=False, blank=True)
    options = models.JSONField(_("target settings"), default=dict, blank=True)
    content_kinds = models.JSONField(_("content kinds"), default=list, blank=True,
                                     help_text=_("Leave empty for every kind."))
    categories = models.ManyToManyField("catalog.Category", blank=True, related_name="+",
                                        verbose_name=_("categories"),
                                        help_text=_("Only items in these categories; none selected means all."))
    verified_at = models.DateTimeField(_("connection verified"), null=True, blank=True, editable=False)
    verify_message = models.CharField(_("last connection test"), max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="channel_name_per_tenant"),
            models.UniqueConstraint(fields=["code"], name="channel_code_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class PushSchedule(TenantOwned):
    """Hold an item's pushes until a time: its next publication reaches the channels at ``push_at``."""

    item = models.OneToOneField("catalog.ContentItem", on_delete=models.CASCADE, related_name="push_schedule",
                                verbose_name=_("item"))
    push_at = models.DateTimeField(_("push to channels at"))

    class Meta:
        verbose_name = _("scheduled push")
        verbose_name_plural = _("scheduled pushes")

    def __str__(self) -> str:
        return f"{self.item} @ {self.push_at:%Y-%m-%d %H:%M}"


class Delivery(TenantOwned):
    """One version of one item pushed to one channel (or withdrawn from it): the idempotency key is the row's
    unique (channel, item, version, action)."""

    class Action(models.TextChoices):
        PUBLISH = "publish", _("Publish")
        UPDATE = "update", _("Update")
        WITHDRAW = "withdraw", _("Withdraw")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Waiting to retry")
        CONFIRMING = "confirming", _("Waiting for the platform")
        MANUAL = "manual", _("Waiting to be published by hand")
        DELIVERED = "delivered", _("Delivered")
        PARKED = "parked", _("Parked")
        SKIPPED = "skipped", _("Skipped")

    OPEN = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.RETRYING, Status.CONFIRMING)

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries",
                                verbose_name=_("channel"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.CASCADE, related_name="deliveries",
                             verbose_name=_("item"))
    version = models.PositiveIntegerField(_("version"))
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    due_at = models.DateTimeField(_("due"), db_index=True)
    lease_until = models.DateTimeField(_("leased until"), null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    external_id = models.CharField(_("ID on the platform"), max_length=200, blank=True)
    external_url = models.URLField(_("URL on the platform"), max_length=500, blank=True)
    error_code = models.CharField(_("error code"), max_length=60, blank=True)
    message = models.CharField(_("last result"), max_length=500, blank=True)
    # A pending publication's receipt.
    data = models.JSONField(_("platform receipt"), default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["channel", "item", "version", "action"], name="one_delivery_per_version"),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="delivery_due",
                         condition=Q(status__in=["scheduled", "queued", "sending", "retrying", "confirming"])),
            models.Index(fields=["tenant", "channel", "status"], name="delivery_by_channel"),
        ]

    def __str__(self) -> str:
        return gettext("%(action)s “%(item)s” v%(version)s → %(channel)s") % {
            "action": self.get_action_display(), "item": self.item.title, "version": self.version,
            "channel": self.channel.name}

    @property
    def webhook_id(self) -> str:
        """The id receivers deduplicate by: the same on every attempt and replay of this delivery."""
        return f"dlv_{self.tenant_id}_{self.pk}"


class DeliveryAttempt(TenantOwned):
    """One try at a delivery, written before the call (so a worker killed mid-push leaves its trace) and completed
    after it."""

    class Outcome(models.TextChoices):
        STARTED = "started", _("Started (no answer recorded)")
        OK = "ok", pgettext_lazy("attempt outcome", "Succeeded")
        PENDING = "pending", _("Accepted, not yet live")
        TRANSIENT = "transient", _("Failed, will retry")
        PERMANENT = "permanent", _("Failed permanently")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log",
                                 verbose_name=_("delivery"))
    number = models.PositiveSmallIntegerField(_("attempt number"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    external_id = models.CharField(_("ID on the platform"), max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    worker = models.CharField(_("worker"), max_length=100, blank=True)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        verbose_name = _("attempt")
        verbose_name_plural = pgettext_lazy("the records of a delivery's tries", "attempts")

    def __str__(self) -> str:
        return f"#{self.number} {self.outcome}"


class Publication(TenantOwned):
    """What a channel shows of an item now: the version, the platform's id and URL, live or withdrawn."""

    class Status(models.TextChoices):
        LIVE = "live", _("Live")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="publications",
                                verbose_name=_("channel"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.CASCADE, related_name="publications",
                             verbose_name=_("item"))
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.LIVE)
    external_id = models.CharField(_("ID on the platform"), max_length=200, blank=True)
    external_url = models.URLField(_("URL on the platform"), max_length=500, blank=True)
    # What the connector needs later (cover media id, ...).
    data = models.JSONField(_("connector data"), default=dict, blank=True)
    published_at = models.DateTimeField(_("published at"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-published_at"]
        verbose_name = _("publication")
        verbose_name_plural = _("publications")
        constraints = [models.UniqueConstraint(fields=["channel", "item"], name="one_publication_per_channel")]

    def __str__(self) -> str:
        return gettext("“%(item)s” v%(version)s on %(channel)s") % {
            "item": self.item.title, "version": self.version, "channel": self.channel.name}


class ChannelClick(TenantOwned):
    """A visit through a tracked link: the exposure a channel earns when its platform reports no impressions, and
    the evidence an order is attributed to the channel by."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="clicks",
                                verbose_name=_("channel"))
    item = models.ForeignKey("catalog.ContentItem", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("item"))
    visitor = models.CharField(_("visitor"), max_length=64, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+", verbose_name=_("learner"))
    landing_path = models.CharField(_("landing page"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "visitor", "-created_at"], name="click_by_visitor"),
                   models.Index(fields=["tenant", "user", "-created_at"], name="click_by_user")]

    def __str__(self) -> str:
        return f"click {self.channel_id} {self.created_at:%Y-%m-%d}"


class ChannelStat(TenantOwned):
    """A day of a channel's platform-reported numbers (impressions, reads, shares), where the platform reports any."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="stats",
                                verbose_name=_("channel"))
    day = models.DateField(_("date"))
    impressions = models.PositiveIntegerField(_("impressions"), default=0)
    engagements = models.PositiveIntegerField(_("engagements"), default=0)
    fetched_at = models.DateTimeField(_("fetched at"), auto_now=True)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["channel", "day"], name="one_stat_per_channel_day")]


class Allocation(TenantOwned):
    """One day's traffic allocation for one channel: its measured inputs, its share and its push budget."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="allocations",
                                verbose_name=_("channel"))
    day = models.DateField(_("date"))
    impressions = models.PositiveIntegerField(_("impressions"), default=0)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    # "impressions" where the platform reports them.
    exposure_source = models.CharField(_("exposure measured by"), max_length=12, default="clicks")
    interest = models.FloatField(_("interest"))
    exposure = models.FloatField(_("exposure"))
    share = models.FloatField(_("share"))
    budget = models.PositiveIntegerField(_("push budget"), null=True, blank=True)  # None: no daily limit set
    # No data yet: given the exploration floor.
    explored = models.BooleanField(_("given the exploration share"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-day", "-share"]
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [models.UniqueConstraint(fields=["channel", "day"], name="one_allocation_per_channel_day")]

    def __str__(self) -> str:
        return gettext("%(channel)s, %(date)s: %(share)s") % {
            "channel": self.channel.name, "date": self.day, "share": f"{self.share:.2%}"}


class DistributionSettings(TenantOwned):
    """A storefront's distribution settings: the daily push budget the allocation shares out."""

    daily_push_budget = models.PositiveIntegerField(
        _("daily push budget"), null=True, blank=True,
        help_text=_("Pushes per day across all channels, shared out by the traffic allocation. Empty: no limit "
                    "(the allocation still orders the pushes)."))
    exploration_floor = models.FloatField(
        _("exploration share"), default=0.05, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Share given to a channel with no measurements yet, so that it can be measured."))
    window_days = models.PositiveIntegerField(
        _("measurement window (days)"), default=28, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("How many past days of visits and orders the allocation measures: 1 to 3650."))

    class Meta:
        verbose_name = _("distribution settings")
        verbose_name_plural = _("distribution settings")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="one_distribution_settings_per_tenant")]

    def __str__(self) -> str:
        return str(_("Distribution settings"))
