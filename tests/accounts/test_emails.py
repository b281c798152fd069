"""What a storefront's people read in the mail the platform sends for it: the storefront's name (never the host or
the platform's brand), from a sender named after it, and invitations worded for the role offered."""

import re

import pytest
from django.core import mail

from accounts.models import Role
from tests.conftest import host_client
from tests.factories import TenantFactory, member

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"


def test_the_confirmation_email_names_the_storefront_signed_up_on(tenant_a):
    response = host_client("alpha.test").post("/accounts/signup/", {
        "email": "mei@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject == "Alpha Academy: Confirm your email address"
    assert "Alpha Academy" in message.body and "alpha.test!" not in message.body
    assert "Zhiku" not in message.subject + message.body
    assert message.from_email.startswith("Alpha Academy <")
    assert re.search(r"http://alpha\.test/accounts/confirm-email/\S+", message.body)


def test_the_password_reset_email_names_the_storefront(tenant_a):
    member(tenant_a, email="lin@example.com")
    host_client("alpha.test").post("/accounts/password/reset/", {"email": "lin@example.com"})
    (message,) = mail.outbox
    assert message.subject == "Alpha Academy: Reset your password"
    assert "Alpha Academy" in message.body and "Zhiku" not in message.body
    assert "/accounts/password/reset/key/" in message.body


def test_on_the_platform_host_the_mail_is_the_platforms(db):
    host_client("localhost").post("/accounts/password/reset/", {"email": "nobody@example.com"})
    (message,) = mail.outbox
    assert message.subject.startswith("Zhiku: ") and "localhost!" not in message.body


def test_a_chinese_storefronts_confirmation_email_is_in_chinese_throughout():
    TenantFactory(slug="lianhua", name="莲花书院", domain="lianhua.test", default_language="zh-hans")
    host_client("lianhua.test").post("/accounts/signup/", {
        "email": "mei@example.com", "password1": PASSWORD, "password2": PASSWORD})
    (message,) = mail.outbox
    assert "莲花书院" in message.subject and "莲花书院" in message.body
    assert "Hello" not in message.body  # allauth's own greeting read "来自lianhua.test的 Hello!"


@pytest.mark.parametrize(("role", "subject", "two_factor"), [
    (Role.OWNER, "You are invited to run Alpha Academy", True),
    (Role.STAFF, "You are invited to help run Alpha Academy", True),
    (Role.CREATOR, "You are invited to publish on Alpha Academy", False),
])
def test_an_invitation_is_worded_for_the_role_and_names_only_the_storefront(
        tenant_a, role, subject, two_factor, django_capture_on_commit_callbacks):
    owner = member(tenant_a, Role.OWNER, mfa=True)
    with django_capture_on_commit_callbacks(execute=True):
        host_client("alpha.test", owner).post("/admin/accounts/invitation/add/",
                                              {"email": "new@example.com", "role": role})
    (message,) = mail.outbox
    assert message.subject == subject
    assert "Zhiku" not in message.subject + message.body
    assert ("two-factor" in message.body) is two_factor  # creators do not need it
    assert message.from_email.startswith("Alpha Academy <")


def test_someone_with_an_account_is_asked_to_sign_in_not_to_choose_a_password(tenant_a,
                                                                              django_capture_on_commit_callbacks):
    member(tenant_a, email="known@example.com")
    owner = member(tenant_a, Role.OWNER, mfa=True)
    with django_capture_on_commit_callbacks(execute=True):
        host_client("alpha.test", owner).post("/admin/accounts/invitation/add/",
                                              {"email": "known@example.com", "role": Role.CREATOR})
    (message,) = mail.outbox
    assert "Sign in with this email address" in message.body and "choose a password" not in message.body
