from urllib.parse import urlsplit, urlunsplit

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import url_str_to_user_pk
from django.conf import settings
from django.core.validators import MaxLengthValidator

from .models import Membership, User
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

    def get_reset_password_from_key_url(self, key: str) -> str:
        """A reset link is built on the host it was asked for, and a storefront's custom domain is run by its tenant
        (its CDN, its logs): a member's link is on their storefront, anyone else's on the platform's own host
        (the first of ``PLATFORM_HOSTS``), where they reset and then sign in wherever they like."""
        url = super().get_reset_password_from_key_url(key)
        if getattr(self.request, "tenant", None) is None:
            return url
        if Membership.objects.filter(user_id=url_str_to_user_pk(key.split("-", 1)[0])).exists():  # this storefront's
            return url
        port = f":{settings.SITE_PORT}" if settings.SITE_PORT else ""
        parts = urlsplit(url)
        return urlunsplit((settings.SITE_SCHEME, f"{settings.PLATFORM_HOSTS[0]}{port}", parts.path, parts.query, ""))

    def post_login(self, request, user, **kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            membership_join(tenant=tenant, user=user)
        return super().post_login(request, user, **kwargs)
