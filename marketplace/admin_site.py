"""The one admin site, serving both the platform operator and each tenant's team.

On a platform host only superusers get in, inside the platform scope (every tenant's rows). On a tenant host, the
people with an admin role there get in, inside that tenant's scope, so every scoped model shows that tenant's rows
and nothing else. Owners and staff (and the operator) must have TOTP set up before the admin opens.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache, wraps

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .models import TenantOwned
from .tenancy import platform_scope


def _role(request) -> str | None:
    from accounts.selectors import membership_role

    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.is_authenticated:
        return None
    return membership_role(user=request.user, tenant=tenant)


def _has_creator_profile(request) -> bool:
    """Whether the signed-in person is credited as a creator on this storefront (their earnings page is linked).
    Asked on a storefront's host, inside its scope."""
    from catalog.models import Creator

    return request.user.is_authenticated and Creator.objects.filter(user=request.user).exists()


def mfa_required(request) -> bool:
    from accounts.roles import MFA_REQUIRED_ROLES

    user = request.user
    return (user.is_superuser or _role(request) in MFA_REQUIRED_ROLES) and not is_mfa_enabled(
        user, [Authenticator.Type.TOTP])


class ZhikuAdminSite(admin.AdminSite):
    site_title = _("Zhiku admin")
    site_header = _("Zhiku")
    index_title = _("Administration")

    def has_permission(self, request) -> bool:
        from accounts.roles import ADMIN_ROLES

        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        if getattr(request, "tenant", None) is None:
            return user.is_superuser
        return user.is_superuser or _role(request) in ADMIN_ROLES

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = tenant.name
            context["site_title"] = f"{tenant.name} · {self.site_title}"
            context["my_earnings"] = _has_creator_profile(request)
        else:
            context["site_header"] = _("Zhiku platform")
        return context

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if self.has_permission(request) and mfa_required(request):
                return HttpResponseRedirect(
                    f"{reverse('mfa_activate_totp')}?{urlencode({'next': request.get_full_path()})}")
            if getattr(request, "tenant", None) is None and request.user.is_superuser:
                with platform_scope():
                    response = inner(request, *args, **kwargs)
                    # Admin pages are TemplateResponses: render them while the scope is still open.
                    if hasattr(response, "render") and not response.is_rendered:
                        response.render()
                    return response
            return inner(request, *args, **kwargs)

        return wrapper

    def login(self, request, extra_context=None):
        """Sign-in goes through allauth (and its MFA step); a signed-in person without a role here is told so."""
        if request.user.is_authenticated:
            return render(request, "admin/no_access.html", status=403)
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: target})}")


class DrillDownChangeList(ChangeList):
    """Django answers a date drill-down it cannot read (``?day__year=abc``) with "?e=1" only when it fails to make
    the first date; a year too large for a date, or the last year, month or day a date can hold (whose next one is
    out of range), is the same bad input. So is a year no date holds typed as a filter (``?created_at__year=0``),
    which fails only when the query is compiled, as the page counts its results."""

    @staticmethod
    @contextmanager
    def _dates_out_of_range():
        try:
            yield
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_filters(self, request):
        with self._dates_out_of_range():
            return super().get_filters(request)

    def get_results(self, request):
        with self._dates_out_of_range():
            return super().get_results(request)


class MissingObjectIs404:
    """An id this admin cannot see is a 404, not Django's "does not exist, perhaps deleted" redirect (which would
    confirm that the id exists on another storefront). A date drill-down out of range is a bad lookup, not a 500."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object on this storefront.")
        return obj

    def get_changelist(self, request, **kwargs):
        return DrillDownChangeList


class ReadOnlyAdminMixin:
    """Rows written only by services (audit trail, money records): the admin shows them and changes nothing."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@cache
def _conditional_unique_fields() -> dict[str, tuple[str, ...]]:
    """The fields (besides the tenant) of each conditional unique rule, by its violation code. The model registry is
    fixed once Django has started."""
    from django.apps import apps

    return {constraint.violation_error_code: tuple(name for name in constraint.fields if name != "tenant")
            for model in apps.get_models() for constraint in model._meta.constraints
            if getattr(constraint, "condition", None) is not None and getattr(constraint, "fields", ())
            and constraint.violation_error_code}


def _per_tenant_errors(errors: ValidationError) -> ValidationError:
    """Show a clash on a per-tenant unique rule (tenant and code, say) at the clashing field, worded without the
    tenant, which is not a field of the form. Errors on the tenant itself go to the top of the form.

    A unique rule holding only for some rows (a condition: a profile linked to someone, an item with an ID from the
    previous platform) reports a clash with its own message and code, and Django puts it at the top of the form: it
    goes to the one field besides the tenant that the rule is about. The form validated the rule, so that field is
    one of its own."""
    if not hasattr(errors, "error_dict"):
        return errors
    conditional = _conditional_unique_fields()
    placed: dict[str, list[ValidationError]] = {}
    for field, field_errors in errors.error_dict.items():
        for error in field_errors:
            target = NON_FIELD_ERRORS if field == "tenant" else field
            check = (error.params or {}).get("unique_check", ())
            if error.code == "unique_together" and "tenant" in check:
                others = tuple(name for name in check if name != "tenant")
                error = error.params["model"].unique_error_message(error.params["model_class"], others)
                target = others[0] if len(others) == 1 else NON_FIELD_ERRORS
            elif field == NON_FIELD_ERRORS and len(conditional.get(error.code) or ()) == 1:
                target = conditional[error.code][0]
            placed.setdefault(target, []).append(error)
    return ValidationError(placed)


def tenant_choices(form, tenant_id: int | None) -> None:
    """Offer (and accept) only ``tenant_id``'s rows in the form's choices of tenant-owned rows. A team's own scope
    already does this; on the platform host the operator's scope holds every storefront's rows, and a row of one
    storefront must not point at another's (a path step at another storefront's item, a credit to its creator)."""
    if tenant_id is None:
        return
    for field in form.fields.values():
        queryset = getattr(field, "queryset", None)
        if queryset is not None and issubclass(queryset.model, TenantOwned):
            field.queryset = queryset.filter(tenant_id=tenant_id)


class TenantModelForm:
    """Mixed into each admin form of a tenant-owned model.

    A new row gets the tenant being served before model validation, and validation keeps the tenant, so a
    duplicate on a per-tenant unique rule is a form error instead of an IntegrityError on save. Choices of other
    tenant-owned rows are the row's own storefront's (``tenant_choices``).
    """

    served_tenant = None  # set per request; None on a platform host

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant_choices(self, self.instance.tenant_id or getattr(self.served_tenant, "pk", None))

    def _post_clean(self):
        if self.instance.tenant_id is None and self.served_tenant is not None:
            self.instance.tenant = self.served_tenant
        super()._post_clean()

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if self.instance.tenant_id is not None:
            exclude.discard("tenant")
        return exclude

    def _update_errors(self, errors):
        super()._update_errors(_per_tenant_errors(errors))


class TenantScopedAdmin(MissingObjectIs404, admin.ModelAdmin):
    """Base for every tenant-owned model's admin.

    Querysets come from the scoped manager, so a tenant's team sees only its rows; an id from another tenant is a
    404. New rows get the tenant being served, before validation, so per-tenant unique rules are checked by the form.
    On a platform host the operator sees every tenant's rows, read-only for additions (they have no tenant to belong
    to).
    """

    # A link typed without its scheme ("example.com/live") is taken as https, as browsers take it.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = kwargs.pop("form", self.form)
        # A form passed in replaces the one ModelAdmin.get_form derives from self.form, which drops the declared
        # fields shown read-only: drop them here too.
        attrs = dict.fromkeys(f for f in self.get_readonly_fields(request, obj) if f in base.declared_fields)
        form = type(base)(base.__name__, (TenantModelForm, base),
                          {**attrs, "served_tenant": getattr(request, "tenant", None)})
        return super().get_form(request, obj, change, form=form, **kwargs)

    def has_add_permission(self, request) -> bool:
        return getattr(request, "tenant", None) is not None and super().has_add_permission(request)

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if getattr(request, "tenant", None) is None:
            return ("tenant", *columns)
        return columns

    def save_model(self, request, obj, form, change):
        if not change:
            obj.tenant = request.tenant
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """A tenant-owned model that only services write (money records, recommender runs): the admin reads it."""
