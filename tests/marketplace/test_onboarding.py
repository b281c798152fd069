"""A storefront onboarded by the operator whose owner has not come in: the operator sends the invitation again, or
invites someone else as its owner, from the platform admin."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from accounts.models import Invitation, Membership, Role, User
from marketplace.models import Tenant
from tests.conftest import host_client, operator_client

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"
LINK = re.compile(r"http://sakura\.test(/invitations/[^/\s]+/)")


@pytest.fixture
def onboarded(django_capture_on_commit_callbacks):
    """The operator onboards Sakura Juku; its owner's invitation goes out."""
    operator = operator_client(email="op@zhiku.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(reverse("admin:marketplace_tenant_add"), {
            "name": "Sakura Juku", "slug": "sakura", "host": "sakura.test", "primary_color": "#c2185b",
            "default_language": "en", "currency": "JPY", "platform_fee_bp": 1000,
            "owner_email": "hanako@sakura.test"})
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["hanako@sakura.test"]]
    return operator


def accept(path: str) -> None:
    response = host_client("sakura.test").post(path, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]


def test_the_operator_sends_an_expired_owner_invitation_again_with_a_fresh_link(onboarded,
                                                                                django_capture_on_commit_callbacks):
    """The owner did not accept within the week: the storefront has nobody who could invite anyone."""
    old_link = LINK.search(mail.outbox[0].body).group(1)
    with scopes_disabled():
        invitation = Invitation.objects.get(email="hanako@sakura.test")
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(days=1))
    changelist = reverse("admin:accounts_invitation_changelist")
    page = onboarded.get(f"{changelist}?tenant__id__exact={invitation.tenant_id}")  # "Invitations" on its page
    assert page.status_code == 200 and "hanako@sakura.test" in page.content.decode()
    assert 'value="resend"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        onboarded.post(changelist, {"action": "resend", "_selected_action": [invitation.pk]})

    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["hanako@sakura.test"]
    with scopes_disabled():
        invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert host_client("sakura.test").get(old_link).status_code == 404  # the old link stops working
    accept(LINK.search(mail.outbox[1].body).group(1))
    with scopes_disabled():
        assert Membership.objects.get(user__email="hanako@sakura.test").role == Role.OWNER


def test_the_operator_invites_another_owner_when_the_address_was_mistyped(onboarded,
                                                                          django_capture_on_commit_callbacks):
    sakura = Tenant.objects.get(slug="sakura")
    page = onboarded.get(reverse("admin:marketplace_tenant_change", args=[sakura.pk])).content.decode()
    add_url = reverse("admin:accounts_invitation_add")
    assert f"{add_url}?storefront={sakura.pk}&amp;role=owner" in page  # "Invite an owner" on the storefront's page
    form = onboarded.get(f"{add_url}?storefront={sakura.pk}&role=owner").context["adminform"].form
    assert (form["storefront"].value(), form["role"].value()) == (str(sakura.pk), "owner")

    with django_capture_on_commit_callbacks(execute=True):
        response = onboarded.post(add_url, {"storefront": sakura.pk, "email": "Hanako.Sato@sakura.test",
                                            "role": Role.OWNER})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["hanako.sato@sakura.test"]
    accept(LINK.search(mail.outbox[-1].body).group(1))
    owner = User.objects.get(email="hanako.sato@sakura.test")
    with scopes_disabled():
        assert Membership.objects.get(user=owner, tenant=sakura).role == Role.OWNER
        invitation = Invitation.objects.get(email="hanako.sato@sakura.test")
    assert (invitation.tenant, invitation.invited_by.email) == (sakura, "op@zhiku.test")


def test_an_invitation_from_the_platform_host_names_its_storefront(onboarded):
    response = onboarded.post(reverse("admin:accounts_invitation_add"), {"email": "x@sakura.test",
                                                                        "role": Role.OWNER})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["storefront"]
    with scopes_disabled():
        assert not Invitation.objects.filter(email="x@sakura.test").exists()


def test_the_operator_withdraws_an_invitation_sent_to_a_mistyped_address(onboarded):
    link = LINK.search(mail.outbox[0].body).group(1)
    with scopes_disabled():
        invitation = Invitation.objects.get(email="hanako@sakura.test")
    response = onboarded.post(reverse("admin:accounts_invitation_delete", args=[invitation.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert host_client("sakura.test").get(link).status_code == 404
