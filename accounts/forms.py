import re
import unicodedata

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import User

EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


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


class ProfileForm(forms.Form):
    """What a person chooses about themselves: the name their reviews show and the language storefronts use with
    them."""

    display_name = forms.CharField(
        label=_("Display name"), required=False, max_length=User._meta.get_field("display_name").max_length,
        help_text=_("Shown with your reviews. Leave it empty to be shown as “A learner”."),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}))
    language = forms.ChoiceField(
        label=_("Preferred language"), required=False,
        choices=[("", _("Each storefront's own")), *settings.LANGUAGES],
        help_text=_("The pages you read signed in, and the emails we send you: receipts, renewals, digests."))

    def clean_display_name(self):
        # Reviews show the name to everyone: an address in it would be published. Full-width forms (＠, as Chinese
        # input methods type it) are folded first.
        name = self.cleaned_data["display_name"]
        if EMAIL_LIKE.search(unicodedata.normalize("NFKC", name)):
            raise ValidationError(_("Choose a name, not an email address: it is shown publicly with your reviews."),
                                  code="email_as_name")
        return name
