from allauth.account.adapter import DefaultAccountAdapter

from .services import membership_join


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up happens on a storefront; signing in to a storefront joins it as a learner."""

    def is_open_for_signup(self, request) -> bool:
        return getattr(request, "tenant", None) is not None

    def post_login(self, request, user, **kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            membership_join(tenant=tenant, user=user)
        return super().post_login(request, user, **kwargs)
