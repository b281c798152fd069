"""A storefront's own legal and contact information: its terms of sale and privacy policy pages, the footer that links
them with its contact address and the platform's credit, the line at checkout, and who sets what in the admin."""

import re

import pytest
from django.test import TestCase
from django.urls import reverse

from accounts.models import Role
from marketplace.models import Tenant
from tests.conftest import host_client, operator_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy
from tests.payments.test_partners import operator_tenant_form

pytestmark = pytest.mark.django_db

TERMS = """## Refunds

Write to us within **14 days** and we refund the purchase.

<script>alert("stolen")</script>
<p onclick="alert('clicked')">Contact.</p>

Contact [our desk](javascript:alert('x')) or <a href="javascript:alert(2)" onmouseover="steal()">here</a>.
"""
CREDIT = "Powered by Zhiku"


def footer(response) -> str:
    assert response.status_code in (200, 400, 404), response.status_code
    return re.search(r'<footer class="site">(.*?)</footer>', response.content.decode(), re.S).group(1)


def legal_set(tenant: Tenant, **fields) -> None:
    """Save the storefront with ``fields`` and commit, as the admin's request would: visitors' pages are cached, and
    the change shows once its new catalog generation starts."""
    for name, value in fields.items():
        setattr(tenant, name, value)
    with TestCase.captureOnCommitCallbacks(execute=True):
        tenant.save()


def owner_form(tenant: Tenant, **changes) -> dict:
    """The branding form as its owner posts it from the admin."""
    return {"name": tenant.name, "primary_color": tenant.primary_color, "default_language": tenant.default_language,
            "time_zone": tenant.time_zone, "contact_email": tenant.contact_email, "terms": tenant.terms,
            "privacy_policy": tenant.privacy_policy, **changes}


def test_the_terms_and_privacy_pages_show_the_owners_markdown_sanitised(tenant_a):
    legal_set(tenant_a, terms=TERMS, privacy_policy="We keep *your email* and nothing else.")
    client = host_client("alpha.test")

    terms = client.get("/legal/terms/")
    assert terms.status_code == 200
    page = terms.content.decode()
    assert "<title>Terms of sale · Alpha Academy</title>" in page
    assert "<h1>Terms of sale</h1>" in page
    assert "<h2>Refunds</h2>" in page and "<strong>14 days</strong>" in page
    body = page.split("<h1>Terms of sale</h1>")[1].split("</article>")[0]
    assert "<script" not in body and "stolen" not in body
    assert "onclick" not in body and "onmouseover" not in body and "javascript:" not in body
    assert '<a rel="noopener nofollow ugc">here</a>' in body
    assert 'lang="en"' in page.split("<h1>")[1]  # the text is in the storefront's language

    privacy = client.get("/legal/privacy/")
    assert privacy.status_code == 200
    assert "<h1>Privacy policy</h1>" in privacy.content.decode()
    assert "<em>your email</em>" in privacy.content.decode()


def test_a_text_the_storefront_has_not_written_is_not_found_and_not_linked(tenant_a):
    client = host_client("alpha.test")
    assert client.get("/legal/terms/").status_code == 404
    assert client.get("/legal/privacy/").status_code == 404
    bottom = footer(client.get("/"))
    assert "/legal/" not in bottom and "mailto:" not in bottom and "<nav" not in bottom
    assert bottom.strip() == f"<p>Alpha Academy · {CREDIT}</p>"

    legal_set(tenant_a, privacy_policy="Privacy words.")
    assert client.get("/legal/terms/").status_code == 404
    assert client.get("/legal/privacy/").status_code == 200
    # The platform's own host has no storefront, so no storefront texts.
    assert host_client("localhost").get("/legal/privacy/").status_code == 404


def test_the_footer_links_what_the_storefront_wrote_and_its_contact_address(tenant_a):
    item = catalog_item(tenant_a, title="Free Article")
    legal_set(tenant_a, terms="Terms.", contact_email="help@alpha.example")
    client = host_client("alpha.test")
    for path in ("/", "/browse/", f"/item/{item.slug}/", "/legal/terms/", "/no-such-page/"):
        bottom = footer(client.get(path))
        assert '<nav aria-label="Legal and contact">' in bottom, path
        assert '<li><a href="/legal/terms/">Terms of sale</a></li>' in bottom, path
        assert '<a href="mailto:help@alpha.example">help@alpha.example</a>' in bottom, path
        assert "/legal/privacy/" not in bottom, path
        assert CREDIT in bottom, path

    legal_set(tenant_a, terms="", privacy_policy="Privacy.", contact_email="")
    bottom = footer(client.get("/"))
    assert '<li><a href="/legal/privacy/">Privacy policy</a></li>' in bottom
    assert "/legal/terms/" not in bottom and "mailto:" not in bottom

    # The page shown when a request is refused before any view (a NUL byte) has the same footer.
    refused = client.get("/browse/?q=%00")
    assert refused.status_code == 400
    assert '<a href="/legal/privacy/">Privacy policy</a>' in footer(refused)


def test_a_white_label_leaves_the_platforms_credit_out_of_the_footer(tenant_a, tenant_b):
    legal_set(tenant_a, white_label=True, terms="Terms.")
    alpha = footer(host_client("alpha.test").get("/"))
    assert CREDIT not in alpha and "Zhiku" not in alpha
    assert "<p>Alpha Academy</p>" in alpha and "/legal/terms/" in alpha
    assert CREDIT not in footer(host_client("alpha.test").get("/browse/?q=%00"))
    # Another storefront still credits the platform, and so does the platform's own host.
    assert CREDIT in footer(host_client("beta.test").get("/"))
    assert CREDIT in footer(host_client("localhost").get("/"))


def test_the_owner_writes_the_legal_texts_but_cannot_give_the_storefront_a_white_label(
        tenant_a, django_capture_on_commit_callbacks):
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = owner.get(change).content.decode()
    legal = re.search(r'<fieldset[^>]*>\s*<h2[^>]*>Legal and contact</h2>.*?</fieldset>', page, re.S).group(0)
    assert re.findall(r'name="(\w+)"', legal) == ["contact_email", "terms", "privacy_policy"]
    assert 'name="white_label"' not in page
    assert re.search(r'field-white_label.*?<div class="readonly">', page, re.S)

    response = owner.post(change, owner_form(tenant_a, white_label="on", contact_email="help@alpha.example",
                                             terms="Our **terms**.", privacy_policy="Our policy."))
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert (tenant_a.white_label, tenant_a.contact_email, tenant_a.terms, tenant_a.privacy_policy) == (
        False, "help@alpha.example", "Our **terms**.", "Our policy.")
    assert CREDIT in footer(host_client("alpha.test").get("/"))

    operator = operator_client()
    assert 'name="white_label"' in operator.get(change).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(change, operator_tenant_form(tenant_a, white_label="on", terms=tenant_a.terms))
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.white_label is True and tenant_a.terms == "Our **terms**."
    assert CREDIT not in footer(host_client("alpha.test").get("/"))

    # The owner saving their branding afterwards keeps the operator's white label.
    assert owner.post(change, owner_form(tenant_a, name="Alpha")).status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.white_label is True and tenant_a.name == "Alpha"


def test_an_edit_in_the_admin_shows_at_once_on_cached_pages(tenant_a, django_capture_on_commit_callbacks):
    """Visitors' pages are cached whole per catalog generation; saving the storefront starts a new one."""
    catalog_item(tenant_a, title="Free Article")
    visitor = host_client("alpha.test")
    assert "/legal/terms/" not in footer(visitor.get("/"))
    # A change that bypasses saving the storefront is not seen: the home page is served from the cache.
    Tenant.objects.filter(pk=tenant_a.pk).update(terms="Not through the admin.")
    assert "/legal/terms/" not in footer(visitor.get("/"))

    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    tenant_a.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(change, owner_form(tenant_a, terms="First terms.")).status_code == 302
    assert '<a href="/legal/terms/">Terms of sale</a>' in footer(visitor.get("/"))
    learner = host_client("alpha.test", member(tenant_a))
    for reader in (visitor, learner):
        assert "First terms." in reader.get("/legal/terms/").content.decode()

    tenant_a.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(change, owner_form(tenant_a, terms="Second terms.")).status_code == 302
    for reader in (visitor, learner):
        page = reader.get("/legal/terms/").content.decode()
        assert "Second terms." in page and "First terms." not in page

    tenant_a.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(change, owner_form(tenant_a, terms="")).status_code == 302
    assert "/legal/terms/" not in footer(visitor.get("/"))
    assert visitor.get("/legal/terms/").status_code == 404


def test_the_checkout_names_the_terms_of_sale_only_when_the_storefront_has_them(tenant_a):
    course = catalog_item(tenant_a, title="Course", price=10000)
    client = host_client("alpha.test", member(tenant_a))
    page = client.get(f"/checkout/?item={course.slug}").content.decode()
    assert "By paying you agree" not in page and "/legal/terms/" not in page.split("<footer")[0]
    assert "aria-describedby" not in re.search(r'<button type="submit" name="pay"[^>]*>', page).group(0)

    legal_set(tenant_a, terms="Refunds within 14 days.")
    page = client.get(f"/checkout/?item={course.slug}").content.decode()
    line = 'By paying you agree to the <a href="/legal/terms/">terms of sale</a>.'
    assert line in page
    pay = re.search(r'<button type="submit" name="pay"[^>]*>', page)
    assert page.index(line) < pay.start()
    assert 'aria-describedby="checkout-terms"' in pay.group(0)
    assert 'type="checkbox"' not in page  # information, not a box to tick: paying works as before
    assert "Payment received" in buy(client, f"item={course.slug}").content.decode()


def test_the_checkout_describes_the_pay_button_by_both_notices(tenant_a):
    course = catalog_item(tenant_a, title="Course", price=10000)
    legal_set(tenant_a, terms="Terms.")
    page = host_client("alpha.test", member(tenant_a, verified=False)).get(
        f"/checkout/?item={course.slug}").content.decode()
    pay = re.search(r'<button type="submit" name="pay"[^>]*>', page).group(0)
    assert 'aria-describedby="confirm-email checkout-terms"' in pay


def test_one_storefronts_texts_never_show_on_another(tenant_a, tenant_b):
    legal_set(tenant_a, terms="Alpha's own terms.", privacy_policy="Alpha's own policy.",
              contact_email="help@alpha.example")
    alpha, beta = host_client("alpha.test"), host_client("beta.test")
    assert "Alpha's own terms." in alpha.get("/legal/terms/").content.decode()  # now in alpha's page cache
    assert "Alpha's own policy." in alpha.get("/legal/privacy/").content.decode()

    assert beta.get("/legal/terms/").status_code == 404
    assert beta.get("/legal/privacy/").status_code == 404
    bottom = footer(beta.get("/"))
    assert "/legal/" not in bottom and "alpha" not in bottom.lower()

    legal_set(tenant_b, terms="Beta's terms.")
    page = beta.get("/legal/terms/").content.decode()
    assert "Beta's terms." in page and "Alpha" not in page
    assert "Alpha's own terms." in alpha.get("/legal/terms/").content.decode()
