"""Password resets: the link is built on the host it was asked for, so a storefront sends one only to its own
members. Another storefront's custom domain (its CDN, its logs) must never carry a reset key for someone who is not
its learner."""

import re

import pytest
from django.core import mail

from tests.conftest import host_client
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db

KEY_LINK = re.compile(r"https?://(\S+?)/accounts/password/reset/key/\S+")


def reset(host: str, email: str) -> str:
    mail.outbox.clear()
    response = host_client(host).post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == [email]
    return message.body


def test_a_storefront_sends_reset_links_to_its_own_members_on_its_own_host(tenant_a, tenant_b):
    member(tenant_a, email="lin@example.com")
    assert [m.group(1) for m in KEY_LINK.finditer(reset("alpha.test", "lin@example.com"))] == ["alpha.test"]


def test_another_storefront_sends_no_reset_link_to_someone_who_is_not_its_learner(tenant_a, tenant_b):
    """Lin learns on Alpha and has never visited Beta: a reset asked for on Beta's host gets the "no account
    here" email, with no key in it."""
    member(tenant_a, email="lin@example.com")
    body = reset("beta.test", "lin@example.com")
    assert not KEY_LINK.search(body)
    assert "http://beta.test/accounts/signup/" in body  # allauth's "no account here" email


def test_the_platform_host_resets_any_account(tenant_a):
    UserFactory(email="op@example.com")
    assert [m.group(1) for m in KEY_LINK.finditer(reset("localhost", "op@example.com"))] == ["localhost"]
