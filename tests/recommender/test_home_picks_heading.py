"""The home page's picks are headed by what they are: personal ones, or popular ones for a learner who opted out."""

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def test_a_learner_who_turned_personal_picks_off_is_not_told_they_are_for_them(tenant_a):
    catalog_item(tenant_a, title="Popular Thing")
    client = host_client("alpha.test", member(tenant_a))
    assert '<h2 id="for-you-heading">Recommended for you</h2>' in client.get("/").content.decode()

    client.post("/recommendations/settings/", {"digest": "weekly"})  # the checkbox left unticked
    page = client.get("/").content.decode()
    assert '<h2 id="for-you-heading">Popular picks</h2>' in page
    assert "Recommended for you" not in page
