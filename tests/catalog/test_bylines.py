"""A byline lists its creators as the page's language writes a list."""

import pytest
from django_scopes import scope

from catalog.models import Creator
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("language", "joined"), [("en", "林晓雨, Wang Ming"), ("zh-hans", "林晓雨、Wang Ming")])
def test_the_creators_of_an_item_are_joined_as_a_list_in_the_page_language(tenant_a, language, joined):
    with scope(tenant=tenant_a):
        lin = Creator.objects.create(tenant=tenant_a, name="林晓雨", slug="lin-xiaoyu")
    creators = [lin, catalog_creator(tenant_a, "Wang Ming")]
    item = catalog_item(tenant_a, title="数据分析", creators=creators, language="zh-hans")
    client = host_client("alpha.test")
    client.cookies["django_language"] = language
    card = client.get("/browse/").content.decode()
    assert f'<p class="byline">{joined}</p>' in card
    page = client.get(f"/item/{item.slug}/").content.decode()
    byline = page[page.index('<p class="byline"'):].split("</p>", 1)[0]
    separator = joined[3:-len("Wang Ming")]
    assert f"</a>{separator}<a " in byline


def test_an_item_credited_to_nobody_has_no_byline(tenant_a):
    """The storefront's own work (no creator credited) says nothing, rather than "By" and no name."""
    item = catalog_item(tenant_a, title="House notes")
    page = host_client("alpha.test").get(f"/item/{item.slug}/").content.decode()
    assert 'class="byline"' not in page
