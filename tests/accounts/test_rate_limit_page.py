"""Rate-limited account pages: the storefront's own page, in its language, not allauth's bare English one."""

import pytest

from tests.conftest import host_client
from tests.factories import member

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"


@pytest.mark.parametrize("action, path, data", [
    ("signup", "/accounts/signup/", lambda n: {"email": f"new{n}@example.com", "password1": PASSWORD,
                                              "password2": PASSWORD}),
    ("reset_password", "/accounts/password/reset/", lambda n: {"email": "wang@example.com"}),
])
def test_a_rate_limited_account_page_is_the_storefronts_own_page_in_its_language(
        tenant_a, settings, action, path, data):
    """allauth limits sign-ups and password resets per address (20 sign-ups a minute by default, which one
    classroom behind one NAT address reaches) and answers with the template ``429.html``; without one it sends a
    bare English "429 Too Many Requests". The storefront's learners get its own page, in its language."""
    settings.ACCOUNT_RATE_LIMITS = {action: "1/m/ip"}
    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    member(tenant_a, email="wang@example.com")
    client = host_client("alpha.test")
    assert client.post(path, data(1)).status_code == 302
    client.logout()

    response = client.post(path, data(2))
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too Many Requests" not in body
    assert '<html lang="zh-hans">' in body
    assert "Alpha Academy" in body  # the storefront's header
    assert "返回首页" in body  # "Back to the home page", in the storefront's language
