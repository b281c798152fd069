"""A new owner's first visit: from the invitation to the admin through two-factor set-up, without being asked for
the password they chose seconds before, and with the way on to the admin once their recovery codes are shown."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.services import invitation_create
from marketplace.tenancy import activate
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"


def invited_owner(tenant):
    """A client signed in as the storefront's new owner, who has just chosen their password on the invitation."""
    with activate(tenant):
        _invitation, token = invitation_create(tenant=tenant, email="owner@alpha.example", role=Role.OWNER,
                                               invited_by=None)
    client = host_client("alpha.test")
    client.post(f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    return client


def test_a_new_owner_sets_up_two_factor_and_is_led_on_to_the_admin(tenant_a):
    client = invited_owner(tenant_a)
    setup = client.get("/admin/")["Location"]
    assert setup == f"{reverse('mfa_activate_totp')}?next=%2Fadmin%2F"
    assert client.get(setup).status_code == 200  # no "Confirm Access" for the password just chosen

    secret = client.session["mfa.totp.secret"]
    code = format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // 30))
    codes_page = client.post(reverse("mfa_activate_totp"), {"code": code}, follow=True)
    assert codes_page.redirect_chain[-1][0] == reverse("mfa_view_recovery_codes")
    link = re.search(r'<a href="([^"]+)">Continue</a>', codes_page.content.decode())
    assert link and link.group(1) == "/admin/"
    assert client.get(link.group(1)).status_code == 200


def test_an_address_elsewhere_is_not_offered_after_two_factor_set_up(tenant_a):
    client = invited_owner(tenant_a)
    client.get(f"{reverse('mfa_activate_totp')}?next=https://evil.example/")
    secret = client.session["mfa.totp.secret"]
    code = format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // 30))
    page = client.post(reverse("mfa_activate_totp"), {"code": code}, follow=True).content.decode()
    assert "evil.example" not in page


def test_the_authenticator_app_lists_the_code_under_the_storefronts_name(tenant_a):
    url = urlsplit(invited_owner(tenant_a).get(reverse("mfa_activate_totp")).context["totp_url"])
    assert url.scheme == "otpauth" and parse_qs(url.query)["issuer"] == [tenant_a.name]
