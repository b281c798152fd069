from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from marketplace.admin_site import TenantScopedAdmin
from marketplace.errors import ApplicationError

from .models import Invitation, Membership, Role, User
from .services import invitation_create, invitation_resend


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Global identities: the platform operator's view only."""

    ordering = ["email"]
    list_display = ["email", "display_name", "is_active", "is_superuser", "date_joined", "erased_at"]
    search_fields = ["email", "display_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["display_name", "first_name", "last_name"]}),
        (_("Platform"), {"fields": ["is_active", "is_staff", "is_superuser"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def has_module_permission(self, request):
        return request.tenant is None and super().has_module_permission(request)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__display_name"]
    fields = ["user", "role"]
    readonly_fields = ["user"]

    def has_add_permission(self, request):
        return False  # people join by signing up or through an invitation


class InvitationForm(forms.ModelForm):
    role = forms.ChoiceField(choices=[(r.value, r.label) for r in Role if r != Role.LEARNER])

    class Meta:
        model = Invitation
        fields = ["email", "role"]


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    form = InvitationForm
    list_display = ["email", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    actions = ["resend"]

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        invitation, _token = invitation_create(tenant=request.tenant, email=form.cleaned_data["email"],
                                               role=form.cleaned_data["role"], invited_by=request.user)
        obj.pk = invitation.pk  # the admin's "added" message and redirect refer to the stored row

    @admin.action(description=_("Send again with a fresh link"))
    def resend(self, request, queryset):
        sent = 0
        for invitation in queryset:
            try:
                invitation_resend(invitation=invitation, actor=request.user)
                sent += 1
            except ApplicationError as exc:
                self.message_user(request, _("%(email)s: %(reason)s")
                                  % {"email": invitation.email, "reason": exc.message}, messages.WARNING)
        self.message_user(request, _("%(n)d invitation(s) sent again.") % {"n": sent}, messages.SUCCESS)
