"""Password resets: the link is built on the host it was asked for, and a storefront's custom domain is run by its
tenant (its CDN, its logs). A member's link is on their storefront; anyone else's is on the platform's own host, so
another storefront's domain never carries their reset key, and they still get in."""

import re

import pytest
from django.core import mail
from django_scopes import scopes_disabled

from tests.conftest import host_client
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db

KEY_LINK = re.compile(r"(https?)://(\S+?)(/accounts/password/reset/key/\S+)")
PASSWORD = "a long and unusual passphrase 42"


def reset(host: str, email: str) -> list[tuple[str, str, str]]:
    mail.outbox.clear()
    response = host_client(host).post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == [email]
    return KEY_LINK.findall(message.body)


def test_a_storefront_sends_its_members_reset_links_on_its_own_host(tenant_a, tenant_b):
    member(tenant_a, email="lin@example.com")
    assert [host for _scheme, host, _path in reset("alpha.test", "lin@example.com")] == ["alpha.test"]


def test_someone_who_is_not_its_learner_gets_a_link_on_the_platform_host_and_gets_in(tenant_a, tenant_b):
    """Lin learns on Alpha and wants to join Beta: Beta's sign-up refuses her address (accounts are platform-wide),
    so she resets from Beta. The key goes nowhere near Beta's domain; the link works, and she then signs in on Beta
    and joins it."""
    lin = member(tenant_a, email="lin@example.com")
    assert host_client("beta.test").post("/accounts/signup/", {
        "email": "lin@example.com", "password1": PASSWORD, "password2": PASSWORD}).status_code == 200  # refused
    [(_scheme, host, path)] = reset("beta.test", "lin@example.com")
    assert host == "localhost"
    platform = host_client("localhost")
    form = platform.get(path, follow=True)
    assert form.status_code == 200
    done = platform.post(form.redirect_chain[-1][0] if form.redirect_chain else path,
                         {"password1": "a brand new passphrase 77", "password2": "a brand new passphrase 77"})
    assert done.status_code == 302
    signed_in = host_client("beta.test").post("/accounts/login/", {"login": "lin@example.com",
                                                                    "password": "a brand new passphrase 77"})
    assert signed_in.status_code == 302
    with scopes_disabled():
        assert lin.memberships.filter(tenant=tenant_b).exists()


def test_the_platform_host_resets_any_account(tenant_a):
    UserFactory(email="op@example.com")
    assert [host for _scheme, host, _path in reset("localhost", "op@example.com")] == ["localhost"]
