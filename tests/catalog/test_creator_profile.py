"""A creator names their own work: they edit their own creator profile in the admin (name, biography, photo) and only
their own; the team edits every profile."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from catalog.models import Creator
from tests.conftest import host_client
from tests.factories import catalog_creator, member

pytestmark = pytest.mark.django_db


def profile_url(profile):
    return reverse("admin:catalog_creator_change", args=[profile.pk])


def test_an_invited_creator_can_put_their_own_name_on_their_work(tenant_a):
    """A creator who accepted an invitation (no name asked) writes a first item: their profile is made and called
    "Creator", and their items would be sold "By Creator" until they rename it."""
    creator_user = member(tenant_a, Role.CREATOR)
    client = host_client("alpha.test", creator_user)
    client.post(reverse("admin:catalog_contentitem_add"), {
        "kind": "article", "title": "Kanji tips", "slug": "kanji-tips", "language": "en", "level": "beginner",
        "price": "5.00", "duration_minutes": "0",
        "sections-TOTAL_FORMS": "0", "sections-INITIAL_FORMS": "0", "sections-MIN_NUM_FORMS": "0",
        "sections-MAX_NUM_FORMS": "1000"})
    with scopes_disabled():
        profile = Creator.objects.get(tenant=tenant_a, user=creator_user)
    assert profile.name == "Creator"

    response = client.post(profile_url(profile), {"name": "Jiro Sato", "slug": "jiro-sato", "headline": "Kanji",
                                                  "bio": "Teaches kanji."})
    assert response.status_code == 302
    with scopes_disabled():
        profile.refresh_from_db()
    assert (profile.name, profile.slug, profile.bio, profile.user) == ("Jiro Sato", "jiro-sato", "Teaches kanji.",
                                                                       creator_user)


def test_a_creator_reads_but_cannot_change_a_colleagues_profile(tenant_a):
    ann, bob = member(tenant_a, Role.CREATOR), member(tenant_a, Role.CREATOR)
    catalog_creator(tenant_a, "Ann", ann)
    bobs = catalog_creator(tenant_a, "Bob", bob)
    client = host_client("alpha.test", ann)
    page = client.get(profile_url(bobs))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(profile_url(bobs), {"name": "Ann's now", "slug": "bob"}).status_code == 403
    with scopes_disabled():
        bobs.refresh_from_db()
    assert bobs.name == "Bob"


def test_the_team_edits_any_profile_and_who_it_belongs_to(tenant_a):
    ann = member(tenant_a, Role.CREATOR)
    profile = catalog_creator(tenant_a, "Creator", ann)
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    assert "user" in staff.get(profile_url(profile)).context["adminform"].form.fields
    response = staff.post(profile_url(profile), {"name": "Ann Lee", "slug": "ann-lee", "user": ann.pk})
    assert response.status_code == 302
    with scopes_disabled():
        profile.refresh_from_db()
    assert profile.name == "Ann Lee"
