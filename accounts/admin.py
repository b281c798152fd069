from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from marketplace.admin_site import TenantScopedAdmin
from marketplace.errors import ApplicationError
from marketplace.models import Tenant

from .models import Invitation, Membership, Role, User
from .services import (
    invitation_check,
    invitation_create,
    invitation_resend,
    membership_remove,
    membership_set_role,
    owners_kept_check,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Global identities: the platform operator's view only."""

    ordering = ["email"]
    list_display = ["email", "display_name", "is_active", "is_superuser", "date_joined", "erased_at"]
    search_fields = ["email", "display_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["display_name", "first_name", "last_name", "language"]}),
        (_("Platform"), {"fields": ["is_active", "is_staff", "is_superuser"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def has_module_permission(self, request):
        return request.tenant is None and super().has_module_permission(request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """On a storefront's host a person's page is their membership there.

        The team's pages link the people on their rows (an order's learner, a refund's author) to this page, which is
        the operator's. For the team it leads to the person's membership of this storefront instead, and is a 404
        for anyone who is no member of it: what other storefronts hold about a person is not the team's to see, nor
        is whether that person exists."""
        if request.tenant is None or request.user.is_superuser:
            return super().change_view(request, object_id, form_url, extra_context)
        if not self.admin_site.get_model_admin(Membership).has_view_or_change_permission(request):
            raise PermissionDenied
        user_id = unquote(object_id)
        membership = None
        if user_id.isascii() and user_id.isdigit() and int(user_id) < 2**63:  # no database id is larger
            membership = Membership.objects.filter(tenant=request.tenant, user_id=int(user_id)).first()
        if membership is None:
            raise Http404("No such member of this storefront.")
        return HttpResponseRedirect(reverse("admin:accounts_membership_change", args=[membership.pk],
                                            current_app=self.admin_site.name))


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def clean_role(self):
        role = self.cleaned_data["role"]
        if self.instance.pk and self.instance.role == Role.OWNER and role != Role.OWNER:
            try:
                owners_kept_check(tenant=self.instance.tenant, losing=[self.instance.pk])
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return role


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__display_name"]
    fields = ["user", "role"]
    readonly_fields = ["user"]

    def has_add_permission(self, request):
        return False  # people join by signing up or through an invitation

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.role == Role.OWNER:
            try:
                owners_kept_check(tenant=obj.tenant, losing=[obj.pk], lock=False)
            except ApplicationError:
                return False  # the last owner stays
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        membership_set_role(tenant=obj.tenant, user=obj.user, role=obj.role, actor=request.user)

    def delete_model(self, request, obj):
        membership_remove(tenant=obj.tenant, memberships=[obj], actor=request.user)

    def delete_queryset(self, request, queryset):
        teams = defaultdict(list)  # one storefront's, or on the platform host each storefront's in turn
        for membership in queryset.select_related("tenant"):
            teams[membership.tenant].append(membership)
        for tenant, memberships in teams.items():
            membership_remove(tenant=tenant, memberships=memberships, actor=request.user)


class InvitationForm(forms.ModelForm):
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.LEARNER])
    tenant = None  # the admin's storefront, set by ``InvitationAdmin.get_form``; the operator's form names one

    class Meta:
        model = Invitation
        fields = ["email", "role"]

    def clean(self):
        data = super().clean()
        tenant = self.tenant or data.get("storefront")
        if tenant is not None and data.get("email") and data.get("role"):
            try:
                invitation_check(tenant=tenant, email=data["email"], role=data["role"])
            except ApplicationError as exc:
                self.add_error("email", exc.message)
        return data


class OperatorInvitationForm(InvitationForm):
    """The operator's invitation, on the platform host, names the storefront it is for."""

    storefront = forms.ModelChoiceField(queryset=Tenant.objects.order_by("name"), label=_("Storefront"))

    class Meta(InvitationForm.Meta):
        fields = ["storefront", "email", "role"]


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """A storefront's owners invite their team. The operator invites too, for a storefront chosen on the form, and
    sends pending invitations again: a storefront whose owner's invitation expired, or went to a mistyped address,
    has nobody else who could."""

    form = InvitationForm
    list_display = ["email", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    search_fields = ["email"]
    actions = ["resend"]

    def get_list_filter(self, request):
        return ["role"] if request.tenant is not None else ["tenant", "role"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if request.tenant is None:
            kwargs["form"] = OperatorInvitationForm
        form = super().get_form(request, obj, change, **kwargs)
        form.tenant = request.tenant
        return form

    def has_add_permission(self, request):
        if request.tenant is None:
            return request.user.has_perm("accounts.add_invitation")
        return super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        tenant = request.tenant or form.cleaned_data["storefront"]
        invitation, _token = invitation_create(tenant=tenant, email=form.cleaned_data["email"],
                                               role=form.cleaned_data["role"], invited_by=request.user)
        obj.pk = invitation.pk  # the admin's "added" message and redirect refer to the stored row

    # Sending a fresh link issues the invitation again: owners (and the operator) only, like inviting.
    @admin.action(description=_("Send again with a fresh link"), permissions=["add"])
    def resend(self, request, queryset):
        sent = 0
        for invitation in queryset.select_related("tenant"):
            try:
                invitation_resend(invitation=invitation, actor=request.user)
                sent += 1
            except ApplicationError as exc:
                self.message_user(request, _("%(email)s: %(reason)s")
                                  % {"email": invitation.email, "reason": exc.message}, messages.WARNING)
        if sent:
            self.message_user(request, ngettext("%(n)d invitation sent again.", "%(n)d invitations sent again.", sent)
                              % {"n": sent}, messages.SUCCESS)
