from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from marketplace.admin_site import TenantScopedAdmin

from .models import Entitlement
from .services import entitlement_grant, entitlement_revoke


class EntitlementForm(forms.ModelForm):
    class Meta:
        model = Entitlement
        fields: list[str] = []  # added by the admin per request, inside the tenant's scope

    def clean(self):
        cleaned = super().clean()
        if sum(bool(cleaned.get(f)) for f in ("item", "bundle", "whole_catalog")) != 1:
            raise forms.ValidationError(_("Grant access to one item, one bundle, or the whole catalog."))
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("Access must end after it starts."))
        return cleaned


@admin.register(Entitlement)
class EntitlementAdmin(TenantScopedAdmin):
    """Who may open what. The team grants access by hand (a comp, a school class); checkout adds the rest."""

    list_display = ["user", "item", "bundle", "whole_catalog", "source", "starts_at", "ends_at", "revoked_at"]
    list_filter = ["source", "whole_catalog"]
    search_fields = ["user__email", "item__title", "bundle__title", "reference"]
    form = EntitlementForm
    fields = ["user", "item", "bundle", "whole_catalog", "reference", "starts_at", "ends_at"]
    actions = ["revoke"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and request.tenant is not None:
            kwargs["queryset"] = User.objects.filter(memberships__tenant=request.tenant).order_by("email")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False  # access changes by revoking and granting, so the history stays readable

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        granted = entitlement_grant(
            tenant=request.tenant, user=data["user"], actor=request.user, item=data.get("item"),
            bundle=data.get("bundle"), whole_catalog=data.get("whole_catalog", False),
            reference=data.get("reference", ""), starts_at=data.get("starts_at"), ends_at=data.get("ends_at"))
        obj.pk = granted.pk

    @admin.action(description=_("Revoke access now"))
    def revoke(self, request, queryset):
        for entitlement in queryset:
            entitlement_revoke(entitlement=entitlement, actor=request.user)
        self.message_user(request, _("Access revoked."), messages.SUCCESS)
