"""Unique rules that hold only for some rows (a profile linked to someone, an item with an ID from the previous
platform): a clash is shown next to the field it is about, in words, never as Django's "Constraint … is violated."
at the top of the form."""

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from catalog.models import Creator
from tests.catalog.test_admin import item_form
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item, member

pytestmark = pytest.mark.django_db


def test_a_second_creator_profile_for_one_person_is_refused_next_to_the_person_chosen(tenant_a):
    owner = member(tenant_a, Role.OWNER, mfa=True)
    writer = member(tenant_a, Role.CREATOR)
    catalog_creator(tenant_a, "Ann", writer)
    page = host_client("alpha.test", owner).post(reverse("admin:catalog_creator_add"), {
        "name": "Ann Again", "slug": "ann-again", "headline": "", "bio": "", "user": writer.pk})
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.errors["user"] == ["This person already has a creator profile on this storefront."]
    assert not form.non_field_errors()
    with scope(tenant=tenant_a):
        assert Creator.objects.filter(user=writer).count() == 1


def test_a_duplicate_id_from_the_previous_platform_is_refused_next_to_its_field(tenant_a):
    first = catalog_item(tenant_a, title="First", published=False)
    second = catalog_item(tenant_a, title="Second", published=False)
    with scope(tenant=tenant_a):
        first.external_id = "course-17"
        first.save(update_fields=["external_id"])
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post(reverse("admin:catalog_contentitem_change", args=[second.pk]),
                       item_form(second, external_id="course-17"))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.errors["external_id"] == ["Another item on this storefront already has this ID from the previous "
                                          "platform."]
    assert not form.non_field_errors()
    # Items without an ID from a previous platform never clash with each other.
    assert client.post(reverse("admin:catalog_contentitem_change", args=[second.pk]),
                       item_form(second, title="Second, renamed")).status_code == 302
