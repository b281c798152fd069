from allauth.account.forms import ResetPasswordForm
from django import forms
from django.utils.translation import gettext_lazy as _

from marketplace.tenancy import current_tenant

from .models import Membership


class InvitationPasswordForm(forms.Form):
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label=_("Password (again)"),
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class AccountDeleteForm(forms.Form):
    password = forms.CharField(label=_("Your password"), widget=forms.PasswordInput)
    confirm = forms.BooleanField(label=_("I understand my account cannot be restored."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password


class StorefrontResetPasswordForm(ResetPasswordForm):
    """A password reset link is built on the host it was asked for, and a storefront's custom domain is its
    tenant's to run (its CDN, its logs). So a storefront sends reset links only to its own members: anyone else gets
    allauth's "no account here" email, and resets on a storefront they belong to, or on the platform host."""

    def clean_email(self) -> str:
        email = super().clean_email()
        tenant = current_tenant()
        if tenant is not None and self.users:
            members = set(Membership.objects.filter(user__in=self.users).values_list("user_id", flat=True))
            self.users = [user for user in self.users if user.pk in members]
        return email
