"""Every storefront page names itself in <title>, followed by the storefront's name."""

import re

import pytest

from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


def _title(response) -> str:
    """The title as a browser shows it (blanks collapsed)."""
    return " ".join(re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).split())


def test_account_pages_and_the_missing_page_name_themselves(tenant_a):
    anonymous, signed_in = host_client("alpha.test"), host_client("alpha.test", member(tenant_a))
    pages = {
        "/accounts/login/": (anonymous, "Sign In"), "/accounts/signup/": (anonymous, "Signup"),
        "/accounts/password/reset/": (anonymous, "Password Reset"),
        "/accounts/email/": (signed_in, "Email Addresses"), "/accounts/2fa/": (signed_in, "Two-Factor Authentication"),
        "/account/privacy/": (signed_in, "My data"), "/item/no-such-item/": (anonymous, "Page not found"),
    }
    titles = {path: _title(client.get(path)) for path, (client, _name) in pages.items()}
    assert titles == {path: f"{name} · Alpha Academy" for path, (_client, name) in pages.items()}


def test_the_home_page_is_the_storefront_s_name(tenant_a):
    assert _title(host_client("alpha.test").get("/")) == "Alpha Academy"


def test_the_lesson_player_and_the_sandbox_page_name_the_storefront(tenant_a):
    course = catalog_item(tenant_a, title="Pandas & Plots", kind="course", price=0, lessons=1)
    client = host_client("alpha.test", member(tenant_a))
    lesson = client.get(f"/item/{course.slug}/learn/", follow=True)
    assert _title(lesson) == "Lesson 1 · Pandas &amp; Plots · Alpha Academy"

    paid = catalog_item(tenant_a, title="Paid", price=900)
    key = re.search(r'name="key" value="([0-9a-f]+)"', client.get(f"/checkout/?item={paid.slug}").content.decode())
    hosted = client.post("/checkout/", {"item": paid.slug, "key": key.group(1), "pay": "1"})
    assert _title(client.get(hosted.url)) == "Sandbox payment · Alpha Academy"


def test_a_storefront_name_is_escaped_once_in_the_title(tenant_a):
    tenant_a.name = "Ink & Paper"
    tenant_a.save(update_fields=["name"])
    client = host_client("alpha.test")
    assert _title(client.get("/")) == "Ink &amp; Paper"
    assert _title(client.get("/browse/")) == "Browse · Ink &amp; Paper"
