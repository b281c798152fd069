import json

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from . import audit
from .admin_site import MissingObjectIs404, ReadOnlyAdminMixin, TenantScopedAdmin
from .errors import ApplicationError
from .models import (
    AuditLog,
    Domain,
    Tenant,
    hostname_validator,
    time_zone_choices,
    validate_storefront_host,
)
from .services import currency_change_check, tenant_onboard


class OnboardingForm(forms.ModelForm):
    host = forms.CharField(label=_("Primary domain"), max_length=253, validators=[hostname_validator],
                           help_text=_("The storefront's host, e.g. learn.example.com or acme.localhost."))
    time_zone = forms.ChoiceField(
        label=_("Time zone"), required=False,
        choices=lambda: [("", _("By its language: Asia/Shanghai for Chinese, otherwise UTC")), *time_zone_choices()],
        help_text=Tenant._meta.get_field("time_zone").help_text)
    owner_email = forms.EmailField(label=_("Owner's email"),
                                   help_text=_("An invitation to set a password and MFA is sent here."))

    class Meta:
        model = Tenant
        fields = ["name", "slug", "host", "logo", "primary_color", "default_language", "time_zone", "currency",
                  "platform_fee_bp", "owner_email"]

    def clean_host(self):
        """Refused here, next to the field: a host taken by another storefront, or one that cannot reach this one."""
        host = self.cleaned_data["host"].strip().lower()
        if Domain.objects.filter(host=host).exists():
            raise forms.ValidationError(_("This domain already serves another storefront."), code="host_taken")
        validate_storefront_host(host)
        return host


class TenantForm(forms.ModelForm):
    """The form of a storefront, the operator's and its owner's. A new platform fee must leave room for the
    commissions its team set; a new currency must leave every price chargeable, and a storefront that has sold keeps
    its currency."""

    class Meta:
        help_texts = {"hosts": _("Your own domain: ask the platform operator to add it.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:
            # As Django does for the other fields with a default: a form posted without it keeps the stored zone.
            self.fields["time_zone"].required = False

    def clean_currency(self):
        currency = self.cleaned_data["currency"]
        if self.instance.pk is not None:
            currency_change_check(tenant=self.instance, currency=currency)
        return currency

    def clean_platform_fee_bp(self):
        from payments.services import platform_fee_check

        fee = self.cleaned_data["platform_fee_bp"]
        if self.instance.pk is not None and fee != self.instance.platform_fee_bp:
            try:
                platform_fee_check(tenant=self.instance, platform_fee_bp=fee)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return fee


class DomainFormSet(forms.BaseInlineFormSet):
    def clean(self):
        """Exactly one primary domain among the domains kept: ``Tenant.url`` builds invitation and email links on
        it, and a storefront without one falls back to ``<slug><TENANT_DEV_HOST_SUFFIX>``, which in production
        (no suffix) is the bare slug, a host that serves nothing. Deleting the last domain is refused the same way."""
        super().clean()
        if any(self.errors):
            return
        kept = [form for form in self.forms if form.cleaned_data and not self._should_delete_form(form)]
        if sum(1 for form in kept if form.cleaned_data.get("is_primary")) != 1:
            raise forms.ValidationError(_("A storefront needs exactly one primary domain: tick it on one domain."),
                                        code="one_primary_domain")


class DomainInline(admin.TabularInline):
    model = Domain
    formset = DomainFormSet
    extra = 0


@admin.register(Tenant)
class TenantAdmin(MissingObjectIs404, admin.ModelAdmin):
    """Operators onboard and manage tenants and set their platform fee, currency and domains; a tenant's owner edits
    only their own storefront's branding and time zone, and sees the rest."""

    form = TenantForm
    list_display = ["name", "slug", "primary_host", "currency", "default_language", "is_active", "created_at"]
    list_filter = ["is_active", "currency", "default_language"]
    search_fields = ["name", "slug", "domains__host"]
    inlines = [DomainInline]
    branding_fields = ["name", "logo", "primary_color", "default_language", "time_zone", "contact_email", "terms",
                       "privacy_policy"]
    # The operator's to set, shown to the owner: domains need the operator's DNS and TLS certificates; a white label
    # is part of the storefront's agreement with the platform, as its fee is.
    owner_readonly_fields = ["currency", "hosts", "platform_fee_bp", "white_label"]
    # Grouped under their own heading, on the operator's page and the owner's alike.
    legal_fields = ["contact_email", "terms", "privacy_policy"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("domains")
        if request.tenant is not None:
            return qs.filter(pk=request.tenant.pk)
        return qs

    def get_fields(self, request, obj=None):
        if request.tenant is not None:
            return [*self.branding_fields, *self.owner_readonly_fields]
        return super().get_fields(request, obj)

    def get_fieldsets(self, request, obj=None):
        fields = self.get_fields(request, obj)
        return [
            (None, {"fields": [field for field in fields if field not in self.legal_fields]}),
            (_("Legal and contact"), {
                "fields": [field for field in fields if field in self.legal_fields],
                "description": _("Shown in every page's footer. The terms of sale and the privacy policy are written "
                                 "in Markdown and have pages of their own; the terms are also named next to the pay "
                                 "button at checkout."),
            }),
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.tenant is not None:
            readonly = [*readonly, *self.owner_readonly_fields]
        # The slug is hashed into every ledger entry and signed head: renaming a storefront would break its chain.
        return readonly if obj is None else [*readonly, "slug"]

    @admin.display(description=_("Domains"))
    def hosts(self, obj):
        return ", ".join(domain.host for domain in obj.domains.all())

    def save_model(self, request, obj, form, change):
        """A new platform fee is saved with a new split rule version, which orders placed from now on use."""
        from payments.services import platform_fee_set

        fee = obj.platform_fee_bp
        if change and "platform_fee_bp" in form.changed_data:
            obj.platform_fee_bp = form.initial["platform_fee_bp"]
        super().save_model(request, obj, form, change)
        if change and fee != obj.platform_fee_bp:
            platform_fee_set(tenant=obj, actor=request.user, platform_fee_bp=fee)

    def get_inlines(self, request, obj):
        return self.inlines if request.tenant is None else []

    def has_add_permission(self, request):
        return request.tenant is None and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False  # tenants are deactivated, never deleted: their ledger must survive

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = OnboardingForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                tenant = tenant_onboard(
                    name=data["name"], slug=data["slug"], host=data["host"], owner_email=data["owner_email"],
                    primary_color=data["primary_color"], default_language=data["default_language"],
                    currency=data["currency"], platform_fee_bp=data["platform_fee_bp"], logo=data.get("logo") or None,
                    time_zone=data["time_zone"], actor=request.user,
                )
            except ApplicationError as exc:
                for field, errors in exc.extra.get("fields", {}).items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(
                    request, _("%(name)s is onboarded; an invitation went to %(email)s.")
                    % {"name": tenant.name, "email": data["owner_email"]}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:marketplace_tenant_change", args=[tenant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Onboard a tenant"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/marketplace/tenant/onboard.html", context)


class AuditActionFilter(admin.SimpleListFilter):
    """The actions in words, those the log holds."""

    title = _("what happened")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        codes = model_admin.get_queryset(request).order_by().values_list("action", flat=True).distinct()
        return sorted(((code, audit.describe(code)) for code in codes), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["created_at", "what_happened", "actor", "on"]
    list_filter = [AuditActionFilter]
    list_select_related = ["actor"]
    fields = readonly_fields = ["created_at", "what_happened", "actor", "on", "details", "action"]

    @admin.display(description=_("what happened"), ordering="action")
    def what_happened(self, entry: AuditLog) -> str:
        return audit.describe(entry.action)

    @admin.display(description=_("details"))
    def details(self, entry: AuditLog):
        if not entry.data:
            return "-"
        return format_html("<dl>{}</dl>", format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>",
            ((key.replace("_", " "), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
             for key, value in entry.data.items())))

    @admin.display(description=pgettext_lazy("the record an audit entry is about", "on"))
    def on(self, entry: AuditLog) -> str:
        return self._on(None)(entry)

    def get_list_display(self, request):
        """The record an action was on is linked for the viewer, where they may see it (``_on``)."""
        return [self._on(request) if column == "on" else column for column in super().get_list_display(request)]

    def get_fields(self, request, obj=None):
        return [self._on(request) if field == "on" else field for field in super().get_fields(request, obj)]

    get_readonly_fields = get_fields

    def _on(self, request):
        """The column naming the record an action was on by its kind and ID, linked to its page where the viewer may
        see it, without reading the record (a list shows a hundred entries)."""

        @admin.display(description=pgettext_lazy("the record an audit entry is about", "on"))
        def on(entry: AuditLog):
            if not entry.target_type:
                return "-"
            try:
                model = apps.get_model(entry.target_type)
            except (LookupError, ValueError):  # a model since removed
                return f"{entry.target_type} {entry.target_id}"
            name = f"{capfirst(model._meta.verbose_name)} {entry.target_id}"
            try:
                model_admin = self.admin_site.get_model_admin(model)
            except NotRegistered:
                return name
            if request is None or not model_admin.has_view_or_change_permission(request):
                return name
            opts = model._meta
            url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[entry.target_id])
            return format_html('<a href="{}">{}</a>', url, name)

        return on
