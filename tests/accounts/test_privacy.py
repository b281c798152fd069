import json

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate
from django.test import Client
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


def test_the_export_holds_lesson_progress_and_the_persons_creator_profile(learner, tenant_a):
    from django_scopes import scope

    from tests.factories import catalog_creator, catalog_item

    course = catalog_item(tenant_a, title="Free Course", kind="course", lessons=2)
    with scope(tenant=tenant_a):
        first = course.lessons.order_by("position").first()
    profile = catalog_creator(tenant_a, "Lin Writer", learner)
    with scope(tenant=tenant_a):
        profile.headline = "Data journalist at Example Daily"
        profile.save(update_fields=["headline"])
    client = host_client("alpha.test", learner)
    client.post(f"/item/{course.slug}/progress/", {"lesson": first.id, "position": 321}, HTTP_ACCEPT="application/json")

    data = json.loads(client.get("/account/privacy/export/").content)
    catalog = next(s for s in data["storefronts"] if s["storefront"] == "alpha")["catalog"]
    [lesson] = catalog["lessons"]
    assert (lesson["item"], lesson["lesson"], lesson["position_seconds"]) == ("Free Course", first.title, 321)
    [creator] = catalog["creator_profile"]
    assert (creator["name"], creator["headline"]) == ("Lin Writer", "Data journalist at Example Daily")


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


def test_the_only_owner_of_a_closed_storefront_can_delete_their_account(tenant_a):
    owner = member(tenant_a, Role.OWNER, mfa=True)
    tenant_a.is_active = False  # the operator closed it
    tenant_a.save(update_fields=["is_active"])
    platform = Client(HTTP_HOST="localhost")  # its own host no longer opens
    platform.force_login(owner)
    assert platform.post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"}).status_code == 200
    owner.refresh_from_db()
    assert owner.erased_at is not None and not owner.is_active


def test_deleting_an_account_erases_its_email_from_invitations_and_the_audit_log(
        tenant_a, tenant_b, django_capture_on_commit_callbacks):
    from accounts.models import Invitation
    from accounts.services import invitation_accept, invitation_create
    from marketplace.tenancy import each_tenant
    from tests.factories import enable_totp

    member(tenant_a, Role.OWNER)
    with scopes_disabled():
        _invitation, token = invitation_create(tenant=tenant_a, email="mei@example.com", role=Role.STAFF,
                                               invited_by=None)
        # beta invited her too; she never answered, so she holds no membership there.
        pending, pending_token = invitation_create(tenant=tenant_b, email="Mei@Example.com", role=Role.CREATOR,
                                                   invited_by=None)
    for _tenant in each_tenant([tenant_a]):
        staff = invitation_accept(tenant=tenant_a, token=token, user=None, password=PASSWORD).user
    enable_totp(staff)
    response = host_client("alpha.test", staff).post("/account/privacy/delete/",
                                                     {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 200
    with scopes_disabled():
        invitations = list(Invitation.objects.order_by("tenant_id"))
        logged = list(AuditLog.objects.filter(action="invitation.created").order_by("tenant_id"))
    assert [i.tenant for i in invitations] == [tenant_a, tenant_b]
    assert all("mei" not in i.email.lower() for i in invitations)
    # The entries stay, without the address.
    assert [entry.tenant for entry in logged] == [tenant_a, tenant_b]
    assert all("mei" not in json.dumps(entry.data).lower() for entry in logged)
    assert logged[0].data["role"] == Role.STAFF
    # Her old link to beta no longer opens an account under the erased address, and beta cannot send it again.
    assert host_client("beta.test").get(f"/invitations/{pending_token}/").status_code == 410
    from accounts.services import invitation_resend
    from marketplace.errors import ApplicationError

    for _tenant in each_tenant([tenant_b]):
        with pytest.raises(ApplicationError) as refused:
            invitation_resend(invitation=Invitation.objects.get(pk=pending.pk), actor=None)
    assert refused.value.code == "invitation_erased"


def test_export_and_erasure_reach_a_storefront_that_removed_the_membership(tenant_a, tenant_b):
    from django.urls import reverse

    from catalog.models import ItemProgress, Review
    from catalog.services import progress_record, review_save
    from marketplace.tenancy import each_tenant
    from tests.factories import catalog_item

    item = catalog_item(tenant_a, title="Free talk")
    learner = member(tenant_a, email="lin@example.com")
    for _tenant in each_tenant([tenant_a]):
        review_save(user=learner, item=item, rating=2, body="My honest words, signed Lin")
        progress_record(user=learner, item=item, position_seconds=30)
    owner = member(tenant_a, Role.OWNER, mfa=True)
    with scopes_disabled():
        membership = Membership.objects.get(tenant=tenant_a, user=learner)
    removed = host_client("alpha.test", owner).post(reverse("admin:accounts_membership_delete", args=[membership.pk]),
                                                    {"post": "yes"})
    assert removed.status_code == 302
    MembershipFactory(tenant=tenant_b, user=learner)

    # They still have a review and progress on alpha, and ask for their data from beta.
    exported = json.loads(host_client("beta.test", learner).get("/account/privacy/export/").content)
    alpha = next(s for s in exported["storefronts"] if s["storefront"] == "alpha")
    assert alpha["membership"] is None
    assert [r["body"] for r in alpha["catalog"]["reviews"]] == ["My honest words, signed Lin"]
    assert host_client("beta.test", learner).post("/account/privacy/delete/",
                                                  {"password": PASSWORD, "confirm": "on"}).status_code == 200
    with scopes_disabled():
        assert Review.objects.get(item=item).body == ""
        assert not ItemProgress.objects.filter(user=learner).exists()
        assert AuditLog.objects.filter(tenant=tenant_a, action="user.erased").exists()


def test_the_sole_owner_refusal_is_in_the_visitors_language(tenant_a):
    from django.conf import settings

    owner = member(tenant_a, Role.OWNER, mfa=True)
    client = host_client("alpha.test", owner)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = client.post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 400
    errors = str(response.context["delete_form"].non_field_errors())
    assert "你是" in errors and "唯一的所有者" in errors, errors


def test_visits_through_tracked_links_are_exported_and_cut_from_the_person_on_deletion(learner, tenant_a):
    """A visit through a promoter's or a channel's link is evidence a commission or an attribution rests on: the row
    stays when the person deletes their account, but no longer names them or their browser."""
    from distribution.models import Channel, ChannelClick
    from payments.models import PaymentSettings, Promoter, ReferralTouch

    with scopes_disabled():
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
        Promoter.objects.create(tenant=tenant_a, user=member(tenant_a), code="TOP001",
                                status=Promoter.Status.APPROVED)
        channel = Channel.objects.create(tenant=tenant_a, name="Partner feed", kind="feed")
    client = host_client("alpha.test", learner)
    client.get("/?ref=TOP001")
    client.get(f"/?zc={channel.code}")
    data = json.loads(client.get("/account/privacy/export/").content)
    [alpha] = [s for s in data["storefronts"] if s["storefront"] == "alpha"]
    assert [v["promoter_code"] for v in alpha["payments"]["referral_visits"]] == ["TOP001"]
    assert [v["channel"] for v in alpha["distribution"]["visits_through_channels"]] == ["Partner feed"]

    assert client.post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"}).status_code == 200
    with scopes_disabled():
        assert list(ReferralTouch.objects.values_list("user", "visitor")) == [(None, "")]
        assert list(ChannelClick.objects.values_list("user", "visitor")) == [(None, "")]


def test_a_promoter_who_deletes_their_account_leaves_no_email_in_the_ledger(learner, tenant_a):
    """A promoter's commission accounts were named after their email address: the accounts and their money stay,
    named by the promoter's code."""
    from payments.models import LedgerAccount, PaymentSettings, Promoter
    from payments.services import platform_fee_set, split_rule_create
    from tests.factories import catalog_item
    from tests.payments.test_checkout import buy

    with scopes_disabled():
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
        Promoter.objects.create(tenant=tenant_a, user=learner, code="LIN001", status=Promoter.Status.APPROVED)
        split_rule_create(tenant=tenant_a, actor=None, promoter_commission_bp=1000)
        platform_fee_set(tenant=tenant_a, actor=None, platform_fee_bp=0)
    course = catalog_item(tenant_a, title="Course", price=10000)
    buyer = host_client("alpha.test", member(tenant_a))
    buyer.get("/?ref=LIN001")
    buy(buyer, f"item={course.slug}")
    with scopes_disabled():
        assert list(LedgerAccount.objects.filter(kind="promoter").values_list("name", flat=True)) == [
            "lin@example.com (held)"]
    client = host_client("alpha.test", learner)
    assert client.post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"}).status_code == 200
    with scopes_disabled():
        assert list(LedgerAccount.objects.filter(kind="promoter").values_list("name", flat=True)) == [
            "LIN001 (held)"]


def test_export_and_erasure_reach_a_storefront_where_only_the_audit_log_names_the_person(tenant_a, tenant_b):
    """A staff member acted on alpha and was then taken off the team: alpha keeps their audit entries (the audit
    log has no ``user`` column and hides its relation to the storefront), so alpha is in their export, and erasure
    unlinks the entries from them and keeps them."""
    from django.urls import reverse

    owner = member(tenant_a, Role.OWNER, mfa=True)
    staff = member(tenant_a, Role.STAFF, mfa=True, email="former.staff@example.com")
    with scopes_disabled():
        acted = AuditLog.objects.create(tenant=tenant_a, actor=staff, action="catalog.item_approved",
                                        target_type="catalog.contentitem", target_id="7")
        membership = Membership.objects.get(tenant=tenant_a, user=staff)
    removed = host_client("alpha.test", owner).post(reverse("admin:accounts_membership_delete", args=[membership.pk]),
                                                    {"post": "yes"})
    assert removed.status_code == 302
    MembershipFactory(tenant=tenant_b, user=staff)

    client = host_client("beta.test", staff)
    exported = json.loads(client.get("/account/privacy/export/").content)
    assert [s["storefront"] for s in exported["storefronts"]] == ["alpha", "beta"]
    alpha = exported["storefronts"][0]
    assert alpha["membership"] is None
    assert [a["action"] for a in alpha["activity"]] == ["catalog.item_approved"]

    assert client.post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"}).status_code == 200
    with scopes_disabled():
        acted.refresh_from_db()
        assert acted.actor_id is None
        assert AuditLog.objects.filter(tenant=tenant_a, action="user.erased").exists()


def test_a_storefront_where_only_an_item_the_person_wrote_names_them_is_visited(tenant_a, tenant_b):
    """Any foreign key to the person counts, not only one named ``user``: here the item's author column."""
    from accounts.selectors import tenants_holding_user_data
    from catalog.models import ContentItem
    from tests.factories import catalog_item

    author = member(tenant_b, email="author@example.com")
    item = catalog_item(tenant_a, title="Notes")
    with scopes_disabled():
        ContentItem.objects.filter(pk=item.pk).update(created_by=author)
    assert tenants_holding_user_data(user=author) == [tenant_a, tenant_b]


def test_erasure_takes_the_persons_address_and_name_out_of_the_admin_history(
        tenant_a, django_capture_on_commit_callbacks):
    """Django's admin history (``django_admin_log``, "Recent actions" on every owner's admin index) keeps an
    object's text from when it was changed: "mei@example.com as staff" for her invitation, her name for her
    membership. The entries stay; the person goes."""
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    owner = member(tenant_a, Role.OWNER, mfa=True)
    owner_client = host_client("alpha.test", owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(reverse("admin:accounts_invitation_add"),
                                     {"email": "mei@example.com", "role": Role.STAFF})
    assert response.status_code == 302
    mei = UserFactory(email="mei@example.com", display_name="Mei Chen")
    with scopes_disabled():
        membership = MembershipFactory(tenant=tenant_a, user=mei, role=Role.STAFF)
    assert owner_client.post(reverse("admin:accounts_membership_change", args=[membership.pk]),
                             {"role": Role.CREATOR}).status_code == 302
    before = LogEntry.objects.count()
    assert sorted(LogEntry.objects.values_list("object_repr", flat=True)) == [
        "Mei Chen (creator)", "mei@example.com as staff"]

    erased = host_client("alpha.test", mei).post("/account/privacy/delete/", {"password": PASSWORD, "confirm": "on"})
    assert erased.status_code == 200
    mei.refresh_from_db()
    assert LogEntry.objects.count() == before
    assert sorted(LogEntry.objects.values_list("object_repr", flat=True)) == [
        f"{mei.email} (creator)", "erased@erased.invalid as staff"]
