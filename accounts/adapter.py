from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from django.core.validators import MaxLengthValidator

from .models import User
from .services import membership_join


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up happens on a storefront; signing in to a storefront joins it as a learner."""

    def is_open_for_signup(self, request) -> bool:
        return getattr(request, "tenant", None) is not None

    def clean_email(self, email: str) -> str:
        """Refuse an address longer than the columns that store it. allauth's forms set no limit: adding such an
        address to an account fails in the database, and signing up cuts it to fit, opening the account (and
        sending its confirmation) under an address the person never typed. The refusal is Django's length message,
        which Django already translates."""
        MaxLengthValidator(min(User._meta.get_field("email").max_length, app_settings.EMAIL_MAX_LENGTH))(email)
        return super().clean_email(email)

    def post_login(self, request, user, **kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            membership_join(tenant=tenant, user=user)
        return super().post_login(request, user, **kwargs)
