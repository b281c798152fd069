import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Invitation, Membership, Role, User
from accounts.services import invitation_create
from marketplace.tenancy import activate
from tests.conftest import host_client
from tests.factories import UserFactory, enable_totp

PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def invite(tenant_a):
    def make(email="owner@alpha.example", role=Role.OWNER):
        with activate(tenant_a):
            return invitation_create(tenant=tenant_a, email=email, role=role, invited_by=None)

    return make


def state():
    with scopes_disabled():
        return (User.objects.count(), Membership.objects.count(),
                list(Invitation.objects.values_list("accepted_at", flat=True)))


def test_owner_accepts_sets_password_and_mfa_then_sees_only_their_admin(tenant_a, tenant_b, invite):
    invitation, token = invite()
    client = host_client("alpha.test")
    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200 and b"owner@alpha.example" in page.content

    response = client.post(f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    user = User.objects.get(email="owner@alpha.example")
    assert user.check_password(PASSWORD)
    assert EmailAddress.objects.get(user=user).verified
    with scopes_disabled():
        assert Membership.objects.get(user=user).role == Role.OWNER

    # The admin insists on TOTP first. The password chosen a moment ago is not asked for again: the set-up page opens.
    response = client.get("/admin/")
    assert response["Location"].startswith(reverse("mfa_activate_totp"))
    assert client.get(response["Location"]).status_code == 200
    secret = client.session["mfa.totp.secret"]
    code = format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // 30))
    assert client.post(reverse("mfa_activate_totp"), {"code": code}).status_code == 302

    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Alpha Academy" in index.content
    tenants = client.get(reverse("admin:marketplace_tenant_changelist"))
    assert list(tenants.context["cl"].queryset) == [tenant_a]


def test_link_used_twice_is_refused_and_changes_nothing(tenant_a, invite):
    _, token = invite()
    client = host_client("alpha.test")
    client.post(f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    before = state()
    second = host_client("alpha.test").post(f"/invitations/{token}/", {"password1": "x" + PASSWORD,
                                                                        "password2": "x" + PASSWORD})
    assert second.status_code == 410
    assert b"already been used" in second.content
    assert state() == before
    assert User.objects.get(email="owner@alpha.example").check_password(PASSWORD)


def test_expired_link_is_refused_and_changes_nothing(tenant_a, invite):
    invitation, token = invite()
    with scopes_disabled():
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = state()
    for method in ("get", "post"):
        response = getattr(host_client("alpha.test"), method)(
            f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
        assert response.status_code == 410
        assert b"expired" in response.content
    assert state() == before


def test_unknown_token_and_token_of_another_storefront_are_404(tenant_a, tenant_b, invite):
    _, token = invite()
    assert host_client("alpha.test").get("/invitations/made-up/").status_code == 404
    assert host_client("beta.test").get(f"/invitations/{token}/").status_code == 404


def test_weak_password_is_shown_next_to_the_field(tenant_a, invite):
    _, token = invite()
    before = state()
    response = host_client("alpha.test").post(f"/invitations/{token}/", {"password1": "123", "password2": "123"})
    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert state() == before


def test_existing_person_signs_in_and_accepts_with_the_same_identity(tenant_a, tenant_b, invite):
    person = UserFactory(email="owner@alpha.example")
    _, token = invite()
    anonymous = host_client("alpha.test").get(f"/invitations/{token}/")
    assert b"Sign in to accept" in anonymous.content
    stranger = UserFactory(email="someone.else@example.com")
    wrong = host_client("alpha.test", stranger).post(f"/invitations/{token}/")
    assert wrong.status_code == 403
    response = host_client("alpha.test", person).post(f"/invitations/{token}/")
    assert response.status_code == 302
    with scopes_disabled():
        assert Membership.objects.get(tenant=tenant_a, user=person).role == Role.OWNER
    assert User.objects.filter(email="owner@alpha.example").count() == 1


def test_invitation_email_carries_the_working_link(tenant_a, invite, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(email="creator@alpha.example", role=Role.CREATOR)
    (message,) = mail.outbox
    path = re.search(r"http://alpha\.test(/invitations/[^/\s]+/)", message.body).group(1)
    assert host_client("alpha.test").get(path).status_code == 200


def test_the_invitation_email_speaks_the_storefronts_language_whoever_sends_it(tenant_a, invite):
    from django.utils import translation

    from accounts.tasks import invitation_email_send

    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    invitation, token = invite(email="staff@alpha.example", role=Role.STAFF)
    mail.outbox.clear()
    with translation.override("en"):  # a worker, or an owner who reads the admin in English
        invitation_email_send(tenant_id=tenant_a.pk, invitation_id=invitation.pk, token=token)
    (message,) = mail.outbox
    assert "接受邀请" in message.body
    assert "Alpha Academy" in message.subject and "知库" not in message.subject  # the storefront's, not the platform's


def test_operator_and_owner_mfa_seeded_accounts_reach_admin(tenant_a):
    owner = UserFactory()
    enable_totp(owner)
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_a, user=owner, role=Role.OWNER)
    assert host_client("alpha.test", owner).get("/admin/").status_code == 200


def test_an_invitation_for_someone_else_is_refused_in_the_visitors_language(tenant_a):
    from django.conf import settings

    from tests.factories import member

    with scopes_disabled():
        _invitation, token = invitation_create(tenant=tenant_a, email="new.staff@example.com", role=Role.STAFF,
                                               invited_by=None)
    client = host_client("alpha.test", member(tenant_a, email="other@example.com"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = client.post(f"/invitations/{token}/")
    assert response.status_code == 403
    assert "此邀请发送给 new.staff@example.com" in response.content.decode()


def test_an_address_verified_on_another_account_asks_to_sign_in_and_opens_no_second_account(tenant_a, invite):
    """The invited address is a verified secondary address of someone's account: following the link signed out
    asks them to sign in, as for an account's main address, instead of opening a second account with it."""
    person = UserFactory(email="personal@example.com")
    EmailAddress.objects.create(user=person, email="mei@school.example", verified=True, primary=False)
    _, token = invite(email="mei@school.example", role=Role.STAFF)
    anonymous = host_client("alpha.test")
    assert b"Sign in to accept" in anonymous.get(f"/invitations/{token}/").content
    before = state()
    response = anonymous.post(f"/invitations/{token}/", {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 403
    assert state() == before
    assert not User.objects.filter(email="mei@school.example").exists()


def test_the_owner_of_a_verified_secondary_address_accepts_and_keeps_their_main_address(tenant_a, invite):
    person = UserFactory(email="personal@example.com")
    EmailAddress.objects.create(user=person, email="Mei@School.example", verified=True, primary=False)
    _, token = invite(email="mei@school.example", role=Role.STAFF)
    page = host_client("alpha.test", person).get(f"/invitations/{token}/")
    assert b"Accept invitation" in page.content
    response = host_client("alpha.test", person).post(f"/invitations/{token}/")
    assert response.status_code == 302
    with scopes_disabled():
        assert Membership.objects.get(tenant=tenant_a, user=person).role == Role.STAFF
    person.refresh_from_db()
    assert person.email == "personal@example.com"
    assert sorted(EmailAddress.objects.filter(user=person).values_list("email", "verified", "primary")) == [
        ("Mei@School.example", True, False), ("personal@example.com", True, True)]


def test_an_address_another_account_verified_is_not_theirs_to_accept_by_typing_it_in(tenant_a, invite):
    """Someone opened an account with the address as its main one but never confirmed it, while another account
    verified it: the invitation belongs to the one who verified it, and accepting it is refused to the other."""
    holder = UserFactory(email="personal@example.com")
    EmailAddress.objects.create(user=holder, email="mei@school.example", verified=True, primary=False)
    typed = UserFactory(email="mei@school.example", verified=False)
    _, token = invite(email="mei@school.example", role=Role.STAFF)
    assert host_client("alpha.test", typed).post(f"/invitations/{token}/").status_code == 403
    assert host_client("alpha.test", holder).post(f"/invitations/{token}/").status_code == 302
    with scopes_disabled():
        assert list(Membership.objects.filter(tenant=tenant_a).values_list("user", flat=True)) == [holder.pk]
