"""The page that records a post made by hand reads as part of its delivery's pages: one heading, and the way back
through the deliveries list and the delivery."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from distribution.models import Delivery
from tests.conftest import host_client
from tests.distribution.test_pipeline import push
from tests.distribution.test_zhihu_and_feeds import channel_for
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def test_the_mark_as_published_page_has_one_heading_and_leads_back_to_the_delivery(
        tenant_a, django_capture_on_commit_callbacks):
    channel_for(tenant_a, "zhihu")
    catalog_item(tenant_a, title="Posted by hand")
    push(tenant_a, django_capture_on_commit_callbacks)
    with scopes_disabled():
        delivery = Delivery.objects.get(action="publish")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(reverse("admin:distribution_delivery_done", args=[delivery.pk])).content.decode()
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", page, re.S) == ["Mark as published"]
    crumbs = page[page.index('class="breadcrumbs"'):]
    crumbs = " ".join(crumbs[:crumbs.index("</div>")].split())
    assert [url for url, _text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', crumbs)] == [
        reverse("admin:index"), reverse("admin:app_list", args=["distribution"]),
        reverse("admin:distribution_delivery_changelist"),
        reverse("admin:distribution_delivery_change", args=[delivery.pk])]
    assert crumbs.endswith("&rsaquo; Mark as published")
