import json

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate
from django_scopes import scopes_disabled

from accounts.models import Membership, Role, User
from marketplace.models import AuditLog
from tests.conftest import host_client
from tests.factories import MembershipFactory, UserFactory, member

PASSWORD = "correct horse battery staple"


@pytest.fixture
def learner(tenant_a, tenant_b):
    person = UserFactory(email="lin@example.com", display_name="林小明")
    MembershipFactory(tenant=tenant_a, user=person)
    MembershipFactory(tenant=tenant_b, user=person)
    return person


def test_learner_downloads_their_data_from_every_storefront(learner):
    response = host_client("alpha.test", learner).get("/account/privacy/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["profile"]["email"] == "lin@example.com"
    assert data["profile"]["display_name"] == "林小明"
    assert {s["storefront"] for s in data["storefronts"]} == {"alpha", "beta"}
    assert all(s["membership"]["role"] == "learner" for s in data["storefronts"])


def test_export_needs_a_login(tenant_a):
    response = host_client("alpha.test").get("/account/privacy/export/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_wrong_password_deletes_nothing(learner):
    response = host_client("alpha.test", learner).post("/account/privacy/delete/",
                                                       {"password": "wrong", "confirm": "on"})
    assert response.status_code == 400
    assert response.context["delete_form"].errors["password"]
    learner.refresh_from_db()
    assert learner.is_active and learner.email == "lin@example.com"


def test_deleting_erases_personal_data_and_keeps_the_row_for_records(learner, tenant_a):
    user_id = learner.pk
    response = host_client("alpha.test", learner).post("/account/privacy/delete/",
                                                       {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 200
    erased = User.objects.get(pk=user_id)
    assert erased.email.endswith("@erased.invalid") and "lin" not in erased.email
    assert (erased.display_name, erased.is_active, erased.has_usable_password()) == ("", False, False)
    assert erased.erased_at is not None
    assert not EmailAddress.objects.filter(user_id=user_id).exists()
    with scopes_disabled():
        assert not Membership.objects.filter(user_id=user_id).exists()
        assert AuditLog.objects.filter(tenant=tenant_a, action="user.erased").exists()
    assert authenticate(email="lin@example.com", password=PASSWORD) is None
    # Signed out everywhere: the old session no longer authenticates.
    assert host_client("alpha.test").get("/account/privacy/").status_code == 302


def test_only_owner_cannot_delete_until_ownership_is_shared(tenant_a):
    owner = member(tenant_a, Role.OWNER, mfa=True)
    response = host_client("alpha.test", owner).post("/account/privacy/delete/",
                                                     {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 400
    assert "only owner" in str(response.context["delete_form"].non_field_errors())
    owner.refresh_from_db()
    assert owner.is_active
    member(tenant_a, Role.OWNER)
    assert host_client("alpha.test", owner).post("/account/privacy/delete/",
                                                 {"password": PASSWORD, "confirm": "on"}).status_code == 200
