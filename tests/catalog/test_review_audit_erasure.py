"""A review the team deleted leaves an audit entry with its rating and words; the words go when their writer erases
their account, as the words of their reviews still on the item do."""

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from accounts.privacy import user_data_export, user_erase
from catalog.models import Review
from marketplace.models import AuditLog
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def _review(tenant, item, user, body: str) -> Review:
    """The learner's review, written on the item's page."""
    response = host_client("alpha.test", user).post(f"/item/{item.slug}/review/", {"rating": "2", "body": body})
    assert response.status_code == 302
    with scope(tenant=tenant):
        return Review.objects.get(item=item, user=user)


def _moderated(tenant) -> dict[int, dict]:
    """The data of the storefront's review deletions, by the reviewer they name."""
    with scope(tenant=tenant):
        return {entry.data["user"]: entry.data for entry in AuditLog.objects.filter(action="catalog.review_deleted")}


def test_the_words_of_a_deleted_review_leave_the_audit_log_with_their_writer(tenant_a):
    item = catalog_item(tenant_a, title="Free Course")
    lin, mei = member(tenant_a, email="lin@example.com"), member(tenant_a, email="mei@example.com")
    lins = _review(tenant_a, item, lin, "Lin's words about the course")
    meis = _review(tenant_a, item, mei, "Mei's words about the course")
    moderator = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    for review in (lins, meis):
        response = moderator.post(reverse("admin:catalog_review_delete", args=[review.pk]), {"post": "yes"})
        assert response.status_code == 302

    before = _moderated(tenant_a)
    assert before[lin.pk] == {"user": lin.pk, "rating": 2, "body": "Lin's words about the course"}
    # The person's export shows what the team did with their review, with their words.
    [storefront] = user_data_export(user=lin)["storefronts"]
    assert [e["data"]["body"] for e in storefront["recorded_about_you"] if e["action"] == "catalog.review_deleted"] \
        == ["Lin's words about the course"]

    user_erase(user=lin)

    after = _moderated(tenant_a)
    # The rating and the fact of the moderation stay; the words go.
    assert after[lin.pk] == {"user": lin.pk, "rating": 2, "body": ""}
    assert after[mei.pk] == before[mei.pk]
    with scope(tenant=tenant_a):
        assert AuditLog.objects.filter(action="catalog.review_deleted").count() == 2


def test_the_words_go_also_where_the_person_left_nothing_else(tenant_a):
    """The team deleted the review and removed the membership, and the review's behaviour event is gone: only the
    audit entry still names the person there."""
    from accounts.models import Membership
    from recommender.models import Event

    item = catalog_item(tenant_a, title="Free Course")
    lin = member(tenant_a, email="lin@example.com")
    review = _review(tenant_a, item, lin, "Lin's words about the course")
    moderator = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    assert moderator.post(reverse("admin:catalog_review_delete", args=[review.pk]), {"post": "yes"}).status_code == 302
    with scope(tenant=tenant_a):
        Membership.objects.filter(user=lin).delete()
        Event.objects.filter(user=lin).delete()

    user_erase(user=lin)

    assert _moderated(tenant_a)[lin.pk]["body"] == ""
