"""Two-factor set-up in the storefront's own name: the authenticator app lists the code as the storefront's (a
white-label school's team never sees the platform's name), and as the platform's only on the platform's host."""

from allauth.mfa.adapter import DefaultMFAAdapter

from marketplace.tenancy import current_tenant

from .adapter import site_name


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_issuer(self) -> str:
        return site_name(current_tenant())
