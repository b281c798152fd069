"""A learner who has not confirmed their email address yet, at checkout."""

import re

import pytest
from django_scopes import scope

from payments.models import Coupon, Order
from tests.conftest import host_client
from tests.factories import catalog_item, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def course(tenant_a):
    item = catalog_item(tenant_a, title="Course", price=10000)
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE10", kind=Coupon.Kind.PERCENT, value=1000)
    return item


def test_the_checkout_says_before_paying_that_the_address_needs_confirming(tenant_a, course):
    client = host_client("alpha.test", member(tenant_a, verified=False))
    page = client.get(f"/checkout/?item={course.slug}").content.decode()
    notice = page.index('id="confirm-email"')
    assert notice < page.index('name="pay"')
    assert 'href="/accounts/email/"' in page
    # The address page it links to offers to send the confirmation again.
    email_page = client.get("/accounts/email/")
    assert email_page.status_code == 200 and 'name="action_send"' in email_page.content.decode()


def test_a_confirmed_learner_is_not_told_to_confirm(tenant_a, course):
    page = host_client("alpha.test", member(tenant_a)).get(f"/checkout/?item={course.slug}").content.decode()
    assert 'id="confirm-email"' not in page


def test_paying_unconfirmed_keeps_the_coupon_price_and_the_way_to_confirm(tenant_a, course):
    client = host_client("alpha.test", member(tenant_a, verified=False))
    response = client.post(f"/checkout/?item={course.slug}",
                           {"item": course.slug, "coupon": "SAVE10", "key": "k-1", "pay": "1"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "Confirm your email address before buying." in page
    assert 'href="/accounts/email/"' in page
    assert re.search(r"Coupon SAVE10</th><td>[^<]*10\.00</td>", page)
    assert re.search(r"Pay \D*90\.00</button>", page)
    with scope(tenant=tenant_a):
        assert not Order.objects.exists()


def test_confirming_the_address_from_the_email_comes_back_to_the_checkout_with_its_coupon(tenant_a, course):
    from allauth.account.models import EmailAddress, EmailConfirmationHMAC

    learner = member(tenant_a, verified=False)
    client = host_client("alpha.test", learner)
    key = re.search(r'name="key" value="([0-9a-f]+)"', client.get(f"/checkout/?item={course.slug}").content.decode())
    client.post(f"/checkout/?item={course.slug}", {"item": course.slug, "key": key.group(1), "coupon": "save10",
                                                   "apply": "1"})
    address = EmailAddress.objects.create(user=learner, email=learner.email, primary=True, verified=False)
    confirmed = client.post(f"/accounts/confirm-email/{EmailConfirmationHMAC(address).key}/")
    assert confirmed.status_code == 302 and confirmed.url == f"/checkout/?item={course.slug}&coupon=SAVE10"
    page = client.get(confirmed.url).content.decode()
    assert 'id="confirm-email"' not in page and "Pay ¥90.00" in page
