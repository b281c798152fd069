from email.utils import formataddr, parseaddr
from urllib.parse import urlsplit, urlunsplit

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import url_str_to_user_pk
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from marketplace.models import Tenant
from marketplace.tenancy import current_tenant

from .models import Membership, User
from .selectors import email_language, email_owner
from .services import membership_join


def from_address(tenant: Tenant | None) -> str:
    """The sender of mail sent for ``tenant``: the configured address (``DEFAULT_FROM_EMAIL``) under the storefront's
    name, which is whom its learners know; on the platform host, the configured sender as it is."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    if tenant is None or not address:
        return settings.DEFAULT_FROM_EMAIL
    return formataddr((tenant.name, address))


def site_name(tenant: Tenant | None) -> str:
    """What mail calls the site it comes from: the storefront's name, and the platform's only on its own host."""
    return tenant.name if tenant is not None else _("Zhiku")


# The page a signed-in person was stopped on because their address is unconfirmed (the checkout): confirming the
# address from this browser comes back to it (``return_after_email_confirmed``).
RETURN_AFTER_CONFIRMING = "return_after_email_confirmed"


def return_after_email_confirmed(request, path: str) -> None:
    """Come back to ``path`` (this site's own) once the person confirms their address in this browser."""
    request.session[RETURN_AFTER_CONFIRMING] = path


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up happens on a storefront; signing in to a storefront joins it as a learner."""

    def get_email_verification_redirect_url(self, email_address) -> str:
        back = self.request.session.pop(RETURN_AFTER_CONFIRMING, None)
        if back and self.request.user.is_authenticated and url_has_allowed_host_and_scheme(
                back, allowed_hosts={self.request.get_host()}, require_https=self.request.is_secure()):
            return back
        return super().get_email_verification_redirect_url(email_address)

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

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's mail (address confirmation, password reset, security notices) names the storefront it was
        asked on, not the request's host: ``site_name`` and ``site_url`` for the templates in templates/account/.

        It is in the language of the person it goes to (the account it names, else the one holding the address): the
        one they chose, else the one of the page it was asked from (a new account's confirmation, a reset asked for
        an address that has no account)."""
        tenant = current_tenant()
        url = tenant.url("/") if tenant is not None else self.request.build_absolute_uri("/")
        person = context.get("user") or email_owner(email=email)
        language = email_language(user=person, tenant=tenant, reading=getattr(self.request, "LANGUAGE_CODE", None))
        with translation.override(language):
            super().send_mail(template_prefix, email, {"site_name": site_name(tenant), "site_url": url, **context})

    def format_email_subject(self, subject: str) -> str:
        return _("%(site)s: %(subject)s") % {"site": site_name(current_tenant()), "subject": subject}

    def get_from_email(self) -> str:
        return from_address(current_tenant())

    def post_login(self, request, user, **kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            membership_join(tenant=tenant, user=user)
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if not user.language and chosen in dict(settings.LANGUAGES):
            # Chosen in the language menu before signing up or in: their account keeps it, so mail follows it too.
            from .services import profile_update

            profile_update(user=user, language=chosen)
        return super().post_login(request, user, **kwargs)
