from django import forms
from django.utils.translation import gettext_lazy as _


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

