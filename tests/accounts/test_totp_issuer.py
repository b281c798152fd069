"""The authenticator app lists a team member's code under their storefront's name, not the platform's."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.services import invitation_create
from marketplace.tenancy import activate
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"


def test_the_totp_code_is_issued_in_the_storefronts_name(tenant_a):
    with activate(tenant_a):
        _invitation, token = invitation_create(tenant=tenant_a, email="owner@alpha.example", role=Role.OWNER,
                                               invited_by=None)
    client = host_client("alpha.test")
    client.post(f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    url = urlsplit(page.context["totp_url"])
    assert url.scheme == "otpauth"
    assert parse_qs(url.query)["issuer"] == [tenant_a.name]
