"""The sandbox provider's hosted page once its payment is settled."""

import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def test_the_settled_payment_page_leads_back_to_the_order(tenant_a, django_capture_on_commit_callbacks):
    item = catalog_item(tenant_a, title="Course", price=900)
    client = host_client("alpha.test", member(tenant_a))
    key = re.search(r'name="key" value="([0-9a-f]+)"', client.get(f"/checkout/?item={item.slug}").content.decode())
    hosted = client.post("/checkout/", {"item": item.slug, "key": key.group(1), "pay": "1"}).url
    with django_capture_on_commit_callbacks(execute=True):
        order_page = client.post(hosted, {"action": "pay"})
    assert order_page.status_code == 302

    again = client.get(hosted).content.decode()  # the browser's back button
    assert "This payment went through already." in again
    assert f'href="{order_page.url}"' in again
