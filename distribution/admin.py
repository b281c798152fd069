"""Distribution in the storefront's admin: channels (with "Test connection"), the delivery log with retry, replay and
"mark as published", scheduled pushes, and the traffic allocation's history."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from catalog.models import ContentItem
from marketplace.admin_site import ReadOnlyAdmin, TenantScopedAdmin
from marketplace.errors import ApplicationError
from marketplace.forms import https_urls

from . import services
from .allocation import allocation_recompute
from .connectors import CONNECTORS, connector_class
from .connectors.feed import feed_urls
from .models import Allocation, Channel, Delivery, DeliveryAttempt, DistributionSettings, Publication, PushSchedule


def credential_fields() -> dict:
    """Every connector's credential inputs by name (the form shows them all; each type uses its own)."""
    fields = {}
    for kind in CONNECTORS:
        for spec in connector_class(kind).credential_fields:
            fields.setdefault(spec.name, spec)
    return fields


class ChannelForm(forms.ModelForm):
    """Credentials are write-only: the inputs start empty, and an empty input keeps the stored value."""

    content_kinds = forms.MultipleChoiceField(choices=ContentItem.Kind.choices, required=False,
                                              widget=forms.CheckboxSelectMultiple, label=_("Content kinds"),
                                              help_text=_("None ticked: every kind."))

    class Meta:
        model = Channel
        fields = ["name", "kind", "is_enabled", "endpoint_url", "content_kinds", "options"]
        formfield_callback = https_urls

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from catalog.models import Category

        # Built per request, inside the storefront's scope (a class-level queryset would query without one), and
        # from the channel's own storefront: the operator's admin sees every storefront's categories.
        served = getattr(self, "served_tenant", None)
        tenant_id = self.instance.tenant_id or (served.pk if served else None)
        self.fields["categories"] = forms.ModelMultipleChoiceField(
            queryset=Category.objects.filter(tenant_id=tenant_id).order_by("position", "name"), required=False,
            label=_("Categories"), widget=forms.CheckboxSelectMultiple,
            help_text=_("Only items in these categories; none means all."),
            initial=list(self.instance.categories.all()) if self.instance.pk else [])
        if self.instance.pk:
            for name in credential_fields():
                self.fields[f"cred_{name}"].help_text = _("Leave empty to keep the stored value.")

    def credentials(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(f"cred_{name}", "") for name in credential_fields()}

    def clean_options(self):
        """Connectors read target settings by name: anything but a JSON object (a list, a string) is refused here,
        rather than failing every push to the channel."""
        options = self.cleaned_data.get("options")
        if options in (None, ""):
            return {}
        if not isinstance(options, dict):
            raise forms.ValidationError(_('Enter a JSON object, such as {"author": "Ann"}, or {} for none.'),
                                        code="not_an_object")
        return options

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind:
            try:
                services.channel_endpoint_check(kind=kind, endpoint_url=cleaned.get("endpoint_url") or "")
            except ApplicationError as exc:
                self.add_error(exc.extra.get("field"), exc.message)
            try:
                services.channel_credentials_check(kind=kind, credentials=self.credentials())
            except ApplicationError as exc:
                self.add_error(f"cred_{exc.extra['field']}", exc.message)
        if kind:  # a new channel, or one changed to another type: its inputs or what is stored must fill them
            for spec in services.channel_credentials_missing(channel=self.instance, kind=kind,
                                                             credentials=self.credentials()):
                if f"cred_{spec.name}" not in self.errors:
                    self.add_error(f"cred_{spec.name}", _("Required for this type of channel."))
        return cleaned


# Declared on the class (not added per instance) so that the admin's fieldsets may name them.
for _name, _spec in credential_fields().items():
    ChannelForm.base_fields[f"cred_{_name}"] = ChannelForm.declared_fields[f"cred_{_name}"] = forms.CharField(
        label=_spec.label, required=False,
        widget=forms.PasswordInput(render_value=False) if _spec.secret else forms.TextInput())


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "is_enabled", "credentials_hint", "verified_at", "share_today", "parked"]
    list_filter = ["kind", "is_enabled"]
    readonly_fields = ["code", "credentials_hint", "verified_at", "verify_message", "feed_urls"]
    actions = ["test_connection", "push_published_items", "recompute_allocation"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["name", "kind", "is_enabled", "endpoint_url", "options"]}),
            (_("What goes there"), {"fields": ["content_kinds", "categories"]}),
            (_("Credentials"), {"fields": ["credentials_hint", *[f"cred_{n}" for n in credential_fields()],
                                           "verified_at", "verify_message"],
                                "description": _("Stored encrypted; never shown again in full. Fill in only the "
                                                 "ones this type of channel uses.")}),
            # The tracking code is drawn when the channel is saved: the add page has none to show yet.
            *([(_("Tracking"), {"fields": ["code", "feed_urls"]})] if obj is not None else []),
        ]

    @admin.display(description=_("feeds"))
    def feed_urls(self, obj):
        if obj is None or obj.pk is None or obj.kind != Channel.Kind.FEED:
            return "—"
        rss, atom = feed_urls(obj)
        return f"RSS: {rss} · Atom: {atom}"

    def get_queryset(self, request):
        latest = Allocation.objects.filter(channel=OuterRef("pk")).order_by("-day")
        return super().get_queryset(request).annotate(
            parked_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PARKED)),
            latest_share=Subquery(latest.values("share")[:1]), latest_budget=Subquery(latest.values("budget")[:1]))

    @admin.display(description=_("share today"))
    def share_today(self, obj):
        if obj.latest_share is None:
            return "—"
        if obj.latest_budget is None:
            return f"{obj.latest_share:.1%}"
        return _("%(share)s · %(budget)s a day") % {"share": f"{obj.latest_share:.1%}", "budget": obj.latest_budget}

    @admin.display(description=_("parked"), ordering="parked_count")
    def parked(self, obj):
        return obj.parked_count

    def save_model(self, request, obj, form, change):
        if not change:
            obj.tenant = request.tenant
        obj.content_kinds = form.cleaned_data.get("content_kinds") or []
        try:
            _channel, generated = services.channel_save(channel=obj, credentials=form.credentials(),
                                                        actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            raise
        obj.categories.set(form.cleaned_data.get("categories") or [])
        if generated:
            self.message_user(request, _("Signing secret (copy it now, it is not shown again): %(secret)s")
                              % {"secret": generated}, messages.WARNING)

    def delete_model(self, request, obj):
        services.channel_delete(channel=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        # "Delete selected" deletes in bulk, past ``delete_model``: each channel goes through the service.
        for channel in queryset:
            services.channel_delete(channel=channel, actor=request.user)

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset):
        for channel in queryset:
            services.channel_verify(channel=channel, actor=request.user)
            level = messages.SUCCESS if channel.verified_at else messages.ERROR
            self.message_user(request, f"{channel.name}: {channel.verify_message}", level)

    @admin.action(description=_("Push every published item that is not there yet"))
    def push_published_items(self, request, queryset):
        total = sum(services.channel_backfill(channel=c, actor=request.user) for c in queryset)
        self.message_user(request, ngettext("%(n)s delivery queued.", "%(n)s deliveries queued.", total)
                          % {"n": total}, messages.SUCCESS)

    @admin.action(description=_("Recompute the traffic allocation now"))
    def recompute_allocation(self, request, queryset):
        # The selected channels' storefronts: on a platform host there is no storefront being served.
        tenants = {channel.tenant_id: channel.tenant for channel in queryset.select_related("tenant")}
        rows = [row for tenant in tenants.values() for row in allocation_recompute(tenant=tenant)]
        self.message_user(request, ngettext("Allocation recomputed for %(n)s channel.",
                                            "Allocation recomputed for %(n)s channels.", len(rows)) % {"n": len(rows)},
                          messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "outcome", "response_code", "latency_ms", "external_id", "error", "worker", "started_at",
              "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class MarkDoneForm(forms.Form):
    external_url = forms.URLField(label=_("URL of the published post"), required=False, assume_scheme="https",
                                  max_length=services.EXTERNAL_URL_CHARS)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every push with its attempts; parked ones can be retried, webhooks replayed, and export
    packages downloaded and marked as published."""

    list_display = ["item", "channel", "version", "action", "status", "attempts", "due_at", "message"]
    list_filter = ["status", "action", "channel"]
    search_fields = ["item__title", "external_id"]
    list_select_related = ["item", "channel"]
    readonly_fields = ["item", "channel", "version", "action", "status", "attempts", "due_at", "external_id",
                       "external_url", "error_code", "message", "created_at", "finished_at", "webhook_id"]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["retry", "replay"]
    change_form_template = "admin/distribution/delivery/change_form.html"

    @admin.display(description=_("message id"))
    def webhook_id(self, obj):
        return obj.webhook_id

    @admin.action(description=_("Retry now"))
    def retry(self, request, queryset):
        self._each(request, queryset, services.delivery_retry, _("Queued again: %(n)s."))

    @admin.action(description=_("Replay (send again with the same id)"))
    def replay(self, request, queryset):
        self._each(request, queryset, services.delivery_replay, _("Replayed: %(n)s."))

    def _each(self, request, queryset, service, done):
        n = 0
        for delivery in queryset:
            try:
                service(delivery=delivery, actor=request.user)
                n += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
        if n:
            self.message_user(request, done % {"n": n}, messages.SUCCESS)

    def get_urls(self):
        return [
            path("<int:pk>/package/", self.admin_site.admin_view(self.package), name="distribution_delivery_package"),
            path("<int:pk>/done/", self.admin_site.admin_view(self.mark_done), name="distribution_delivery_done"),
            *super().get_urls(),
        ]

    def package(self, request, pk):
        delivery = self.get_object(request, str(pk))
        if not self.has_view_permission(request, delivery):
            return HttpResponseRedirect(reverse("admin:distribution_delivery_changelist"))
        try:
            data = services.export_package(delivery=delivery)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:distribution_delivery_change", args=[delivery.pk]))
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{delivery.item.slug}-v{delivery.version}.zip"'
        return response

    def mark_done(self, request, pk):
        delivery = self.get_object(request, str(pk))
        if not self.has_view_permission(request, delivery):
            return HttpResponseRedirect(reverse("admin:distribution_delivery_changelist"))
        form = MarkDoneForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.delivery_mark_done(delivery=delivery, external_url=form.cleaned_data["external_url"],
                                            actor=request.user)
            except ApplicationError as exc:
                form.add_error("external_url", exc.message)
            else:
                self.message_user(request, _("Recorded."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:distribution_delivery_change", args=[delivery.pk]))
        context = {**self.admin_site.each_context(request), "delivery": delivery, "form": form,
                   "opts": self.model._meta, "title": _("Mark as published")}
        return render(request, "admin/distribution/delivery/mark_done.html", context)


@admin.register(Publication)
class PublicationAdmin(ReadOnlyAdmin):
    list_display = ["item", "channel", "version", "status", "external_url", "published_at", "updated_at"]
    list_filter = ["status", "channel"]
    search_fields = ["item__title", "external_id", "external_url"]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    """Each channel's measured inputs, share and budget, day by day: how the allocation changed and why."""

    list_display = ["day", "channel", "impressions", "clicks", "conversions", "exposure_source", "interest_pct",
                    "exposure", "share_pct", "budget", "explored"]
    list_filter = ["channel", "explored"]
    date_hierarchy = "day"

    @admin.display(description=_("interest"))
    def interest_pct(self, obj):
        return f"{obj.interest:.2%}"

    @admin.display(description=_("share"))
    def share_pct(self, obj):
        return f"{obj.share:.2%}"


@admin.register(PushSchedule)
class PushScheduleAdmin(TenantScopedAdmin):
    """Publish now, push later: an item's next publication reaches the channels at the time set here."""

    fields = ["item", "push_at"]
    list_display = ["item", "push_at"]

    def get_readonly_fields(self, request, obj=None):
        # A schedule belongs to its item: changing the item here would leave the first item's schedule (and its
        # held pushes) behind. To hold another item, delete this schedule (its pushes go now) and add one for it.
        return ["item"] if obj is not None and obj.pk else []

    def save_model(self, request, obj, form, change):
        item = obj.item if change else form.cleaned_data["item"]
        services.push_schedule_set(item=item, push_at=form.cleaned_data["push_at"], actor=request.user)

    def delete_model(self, request, obj):
        services.push_schedule_set(item=obj.item, push_at=None, actor=request.user)

    def delete_queryset(self, request, queryset):
        # "Delete selected" deletes in bulk, past ``delete_model``: each schedule goes through the service, which
        # releases its held pushes.
        for schedule in queryset.select_related("item"):
            services.push_schedule_set(item=schedule.item, push_at=None, actor=request.user)


@admin.register(DistributionSettings)
class DistributionSettingsAdmin(TenantScopedAdmin):
    list_display = ["__str__", "daily_push_budget", "exploration_floor", "window_days"]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not DistributionSettings.objects.exists()
