"""Buying on the storefront with the sandbox provider: checkout, the hosted page, access, receipts, refunds."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role
from catalog.models import Bundle
from catalog.services import item_publish_changes
from payments import services
from payments.ledger import ledger_verify
from payments.models import Coupon, Entitlement, JournalEntry, Order, Payment, PaymentSettings, Posting
from tests.conftest import clear_cache, host_client
from tests.factories import catalog_creator, catalog_item, member

pytestmark = pytest.mark.django_db


def buy(client, query: str, *, coupon: str = "", action: str = "pay"):
    """Checkout page → pay → the sandbox's hosted page → a button. Returns the order page response."""
    page = client.get(f"/checkout/?{query}")
    assert page.status_code == 200, page.content.decode()[:500]
    key = re.search(r'name="key" value="([0-9a-f]+)"', page.content.decode()).group(1)
    target = dict([query.split("=")])
    response = client.post("/checkout/", {**target, "key": key, "coupon": coupon, "pay": "1"})
    if response.status_code != 302:
        return response
    hosted = response.url
    assert client.get(hosted).status_code == 200
    return client.post(hosted, {"action": action}, follow=True)


@pytest.fixture
def shop(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Paid Course", kind="course", price=10000, lessons=2, creators=[ada])
    return course, ada


def test_a_learner_buys_an_item_and_gets_access_a_receipt_and_a_balanced_ledger(
        tenant_a, shop, django_capture_on_commit_callbacks):
    course, ada = shop
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    assert "Buy now" in client.get(f"/item/{course.slug}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        receipt = buy(client, f"item={course.slug}")
    assert receipt.status_code == 200
    assert "Start learning" in receipt.content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.status == Order.Status.PAID and order.total == 10000
        assert Entitlement.objects.filter(user=learner, item=course, order=order, revoked_at=None).exists()
        entry = JournalEntry.objects.get(order=order, kind="sale")
        amounts = {p.account.code: p.amount for p in entry.postings.select_related("account")}
        # 10% platform fee, then Ada's 50% of the rest; every part in minor units, summing to zero.
        assert amounts == {"clearing:sandbox": 10000, "platform": -1000, f"creator:{ada.pk}:held": -4500,
                           "tenant": -4500}
        assert ledger_verify(tenant=tenant_a).ok
    assert "Start learning" in client.get(f"/item/{course.slug}/").content.decode()
    assert len(mail.outbox) == 1 and order.number in mail.outbox[0].subject
    assert order.number in client.get("/orders/").content.decode()


def test_tax_is_its_own_account_and_never_shared(tenant_a, shop):
    course, ada = shop
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=600, prices_include_tax=False)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert (order.subtotal, order.tax, order.total) == (10000, 600, 10600)
        postings = dict(Posting.objects.filter(entry__order=order).values_list("account__code", "amount"))
        assert postings["tax"] == -600 and postings["clearing:sandbox"] == 10600
        assert postings["platform"] == -1000 and postings[f"creator:{ada.pk}:held"] == -4500


def test_a_bundle_purchase_opens_every_item_in_it(tenant_a):
    one = catalog_item(tenant_a, title="One", price=3000)
    two = catalog_item(tenant_a, title="Two", price=5000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one, two])
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, "bundle=both")
    for item in (one, two):
        assert "Start learning" in client.get(f"/item/{item.slug}/").content.decode()
    with scope(tenant=tenant_a):
        assert ledger_verify(tenant=tenant_a).ok


def test_a_learner_who_owns_part_of_a_bundle_is_told_before_paying_with_what_the_rest_costs_alone(tenant_a):
    one = catalog_item(tenant_a, title="One", price=3000)
    two = catalog_item(tenant_a, title="Two", price=5000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one, two])
    client = host_client("alpha.test", member(tenant_a))
    assert "bundle-owned" not in client.get("/bundles/both/").content.decode()  # owning none of it: nothing to say
    buy(client, f"item={two.slug}")

    for page in (client.get("/bundles/both/").content.decode(), client.get("/checkout/?bundle=both").content.decode()):
        assert "You already have 1 of its items: the bundle still costs ¥60.00." in page
        assert "The items you don't have cost ¥30.00 bought one by one." in page
        assert f'<a href="/item/{two.slug}/" lang="en">Two</a>' in page
    bundle_page = client.get("/bundles/both/").content.decode()
    assert f'href="/item/{two.slug}/learn/">Open' in bundle_page
    assert f'href="/item/{one.slug}/learn/">Open' not in bundle_page
    # Still theirs to buy, if they want it whole.
    buy(client, "bundle=both")
    assert "Start learning" in client.get(f"/item/{one.slug}/").content.decode()


def test_an_item_taken_out_of_a_bundle_stays_open_to_those_who_bought_the_bundle(tenant_a):
    """As on Teachable: the team reshapes a bundle for future buyers; what earlier buyers paid for stays theirs (and
    ends with their refund), and an item added later opens to them at once."""
    one = catalog_item(tenant_a, title="One", price=3000)
    two = catalog_item(tenant_a, title="Two", price=5000)
    three = catalog_item(tenant_a, title="Three", price=2000)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one, two])
    buyer = member(tenant_a)
    client = host_client("alpha.test", buyer)
    buy(client, "bundle=both")

    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    response = staff.post(reverse("admin:catalog_bundle_change", args=[bundle.pk]), {
        "title": "Both", "slug": "both", "description": "", "price": "60.00", "is_published": "on",
        "items": [one.pk, three.pk]})
    assert response.status_code == 302, response.content.decode()[:2000]
    for item in (one, two, three):
        assert "Start learning" in client.get(f"/item/{item.slug}/").content.decode(), item.title
    later = host_client("alpha.test", member(tenant_a))
    buy(later, "bundle=both")
    assert "Start learning" not in later.get(f"/item/{two.slug}/").content.decode()

    with scope(tenant=tenant_a):
        order = Order.objects.get(user=buyer)
        services.refund_create(payment=order.payments.get(), amount=order.total, actor=None)
    for item in (one, two, three):
        assert "Start learning" not in client.get(f"/item/{item.slug}/").content.decode(), item.title


def test_a_declined_payment_grants_nothing_and_books_nothing(tenant_a, shop):
    course, _ = shop
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}", action="fail")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        assert order.status == Order.Status.FAILED
        assert not Entitlement.objects.filter(user=learner).exists()
        assert not JournalEntry.objects.exclude(kind="publish").exists()


def test_double_submission_of_one_checkout_is_one_order(tenant_a, shop):
    course, _ = shop
    client = host_client("alpha.test", member(tenant_a))
    for _ in range(3):
        response = client.post("/checkout/", {"item": course.slug, "key": "same-attempt", "pay": "1"})
        assert response.status_code == 302
    with scope(tenant=tenant_a):
        assert Order.objects.count() == 1 and Payment.objects.count() == 1


@pytest.mark.parametrize("setup, code, message", [
    ({"expires_at": timezone.now() - timedelta(days=1)}, "coupon_expired", "This coupon has expired."),
    ({"max_uses": 1, "used_count": 1}, "coupon_exhausted", "This coupon has been used up."),
    ({"is_active": False}, "coupon_invalid", "This coupon code is not valid."),
])
def test_a_bad_coupon_is_shown_next_to_its_field_and_nothing_is_written(tenant_a, shop, setup, code, message):
    course, _ = shop
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000, **setup)
    client = host_client("alpha.test", member(tenant_a))
    response = client.post("/checkout/", {"item": course.slug, "key": "k1", "coupon": "save20", "pay": "1"})
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and body.index(message) > body.index('id="id_coupon"')
    with scope(tenant=tenant_a):
        assert not Order.objects.exists()


def test_a_coupon_discounts_and_is_counted_once_paid(tenant_a, shop):
    course, _ = shop
    with scope(tenant=tenant_a):
        coupon = Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000, max_uses=5)
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}", coupon="save20")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        coupon.refresh_from_db()
        assert (order.discount, order.total, coupon.used_count) == (2000, 8000, 1)


def test_switching_the_language_after_applying_a_coupon_keeps_the_coupon(tenant_a, shop):
    course, _ = shop
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE20", kind="percent", value=2000)
    client = host_client("alpha.test", member(tenant_a))
    page = client.get(f"/checkout/?item={course.slug}").content.decode()
    key = re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)
    applied = client.post(f"/checkout/?item={course.slug}", {"item": course.slug, "key": key, "coupon": "save20",
                                                              "apply": "1"}).content.decode()
    back_to = f"/checkout/?item={course.slug}&amp;coupon=SAVE20"
    assert f'name="next" type="hidden" value="{back_to}"' in applied and "Pay ¥80.00" in applied
    switched = client.post("/language/", {"language": "zh-hans", "next": back_to.replace("&amp;", "&")},
                           follow=True).content.decode()
    assert "支付 ¥80.00" in switched and 'value="SAVE20"' in switched


def test_buying_what_you_own_or_what_is_free_is_refused(tenant_a, shop):
    course, _ = shop
    free = catalog_item(tenant_a, title="Free One", price=0)
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, f"item={course.slug}")
    again = client.post("/checkout/", {"item": course.slug, "key": "again", "pay": "1"})
    assert again.status_code == 400 and "You already have this item." in again.content.decode()
    gratis = client.post("/checkout/", {"item": free.slug, "key": "gratis", "pay": "1"})
    assert gratis.status_code == 302 and gratis.url == f"/item/{free.slug}/"  # nothing to pay: it opens from there
    with scope(tenant=tenant_a):
        assert Order.objects.count() == 1


def test_an_unverified_email_cannot_buy(tenant_a, shop):
    course, _ = shop
    learner = member(tenant_a, verified=False)
    response = host_client("alpha.test", learner).post("/checkout/", {"item": course.slug, "key": "x", "pay": "1"})
    assert response.status_code == 403 and "Confirm your email address" in response.content.decode()


def test_orders_and_payment_pages_of_another_tenant_or_learner_are_404(tenant_a, tenant_b, shop):
    course, _ = shop
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        number = Order.objects.get(user=learner).number
    assert host_client("alpha.test", member(tenant_a)).get(f"/orders/{number}/").status_code == 404
    assert host_client("beta.test", learner).get(f"/orders/{number}/").status_code == 404
    assert host_client("beta.test", learner).get(f"/checkout/?item={course.slug}").status_code == 404


def refund(admin, url: str, data: dict):
    """Open the refund form, send it and confirm."""
    seen = re.search(r'name="seen" value="(\d+)"', admin.get(url).content.decode()).group(1)
    return admin.post(url, {**data, "seen": seen, "confirm": "1"})


def test_refunds_partial_then_full_claw_back_and_end_access(tenant_a, shop):
    course, ada = shop
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    staff = member(tenant_a, Role.STAFF, mfa=True)
    admin = host_client("alpha.test", staff)
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
    refund_url = reverse("admin:payments_order_refund", args=[order.pk])
    response = refund(admin, refund_url, {"amount": "30.00", "reason": "partly unhappy"})
    assert response.status_code == 302
    response = refund(admin, refund_url, {"amount": "80.00"})
    assert "more than is left to refund" in response.content.decode()
    with scope(tenant=tenant_a):
        order.refresh_from_db()
        assert (order.status, order.refunded) == (Order.Status.PARTIALLY_REFUNDED, 3000)
        assert Entitlement.objects.get(order=order).revoked_at is None
    assert refund(admin, refund_url, {"amount": "70.00"}).status_code == 302
    with scope(tenant=tenant_a):
        order.refresh_from_db()
        assert (order.status, order.refunded) == (Order.Status.REFUNDED, 10000)
        assert Entitlement.objects.get(order=order).revoked_at is not None
        codes = dict(Posting.objects.filter(entry__order=order).values_list("account__code")
                     .annotate(total=Sum("amount")))
        assert all(total == 0 for total in codes.values())  # everything given back
        assert ledger_verify(tenant=tenant_a).ok
    assert "This item is for learners who have bought it" in host_client("alpha.test", learner).get(
        f"/item/{course.slug}/").content.decode()


def test_the_admin_shows_orders_ledger_and_statement(tenant_a, shop):
    course, _ = shop
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    admin = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert "Paid" in admin.get(reverse("admin:payments_order_changelist")).content.decode()
    entries = admin.get(reverse("admin:payments_journalentry_changelist")).content.decode()
    assert "The chain of 2 entries verifies." in entries  # the course's publication and its sale
    assert re.findall(r'class="field-sequence"><a [^>]*>(\d+)</a>', entries) == ["2", "1"]  # the newest first
    with scope(tenant=tenant_a):
        ids = [str(pk) for pk in services.LedgerAccount.objects.values_list("pk", flat=True)]
    statement = admin.post(reverse("admin:payments_ledgeraccount_changelist"),
                           {"action": "statement_csv", "_selected_action": ids})
    assert statement.status_code == 200 and "chain head" in statement.content.decode()


def test_a_split_rule_change_is_a_new_version_and_old_orders_keep_theirs(tenant_a, shop):
    course, _ = shop
    first = member(tenant_a)
    buy(host_client("alpha.test", first), f"item={course.slug}")
    with scope(tenant=tenant_a):
        services.platform_fee_set(tenant=tenant_a, actor=None, platform_fee_bp=2000)
    second = member(tenant_a)
    buy(host_client("alpha.test", second), f"item={course.slug}")
    with scope(tenant=tenant_a):
        versions = {o.user_id: o.split_rule.version for o in Order.objects.select_related("split_rule")}
        assert versions == {first.pk: 1, second.pk: 2}
        fee = dict(Posting.objects.filter(account__code="platform").values_list("entry__order__user", "amount"))
        assert fee == {first.pk: -1000, second.pk: -2000}


def test_prices_say_when_tax_comes_on_top(tenant_a, shop):
    course, _ = shop
    client = host_client("alpha.test")
    assert "+ tax" not in client.get(f"/item/{course.slug}/").content.decode()
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, tax_rate_bp=800, prices_include_tax=False)
    clear_cache()
    assert "+ tax" in client.get(f"/item/{course.slug}/").content.decode()
    assert "+ tax" in client.get("/browse/").content.decode()
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([course, catalog_item(tenant_a, title="Two", price=5000)])
    clear_cache()
    page = client.get("/bundles/both/").content.decode()
    assert "+ tax" in re.search(r'<p class="price big">(.*?)</p>', page, re.S).group(1)
    assert "+ tax" in client.get(f"/item/{course.slug}/").content.decode().split("Also in the bundle")[1]
    # A storefront that charges no tax has nothing to add, whichever way its prices are meant.
    with scope(tenant=tenant_a):
        PaymentSettings.objects.filter(tenant=tenant_a).update(tax_rate_bp=0)
    clear_cache()
    assert "+ tax" not in client.get(f"/item/{course.slug}/").content.decode()
    assert "+ tax" not in client.get("/bundles/both/").content.decode()


def test_another_storefronts_staff_cannot_see_or_refund_our_orders(tenant_a, tenant_b, shop):
    course, _ = shop
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
    theirs = host_client("beta.test", member(tenant_b, Role.OWNER, mfa=True))
    assert theirs.get(reverse("admin:payments_order_change", args=[order.pk])).status_code == 404
    assert theirs.post(reverse("admin:payments_order_refund", args=[order.pk]), {"amount": "1"}).status_code == 404
    assert order.number not in theirs.get(reverse("admin:payments_order_changelist")).content.decode()
    with scope(tenant=tenant_a):
        order.refresh_from_db()
        assert order.refunded == 0


def test_the_data_export_lists_orders(tenant_a, shop):
    course, _ = shop
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    buy(client, f"item={course.slug}")
    with scope(tenant=tenant_a):
        number = Order.objects.get(user=learner).number
    from accounts.privacy import user_data_export

    assert number in str(user_data_export(user=learner))


def sale_postings(tenant, order) -> dict[str, int]:
    with scope(tenant=tenant):
        entry = JournalEntry.objects.get(order=order, kind="sale")
        return dict(entry.postings.values_list("account__code", "amount"))


def test_a_bundle_with_nothing_in_it_is_not_sold_and_one_emptied_after_checkout_is_still_booked(tenant_a):
    one = catalog_item(tenant_a, title="One", price=3000)
    with scope(tenant=tenant_a):
        empty = Bundle.objects.create(tenant=tenant_a, title="Soon", slug="soon", price=6000, is_published=True)
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=6000, is_published=True)
        bundle.items.set([one])
    client = host_client("alpha.test", member(tenant_a))
    page = client.get(f"/checkout/?bundle={empty.slug}").content.decode()
    assert "This bundle is not on sale." in page and 'name="pay"' not in page  # said before any Pay button
    response = client.post("/checkout/", {"bundle": empty.slug, "key": "k0", "pay": "1"})
    assert response.status_code == 400 and "This bundle is not on sale." in response.content.decode()

    # The team empties the bundle while the learner is paying: the money taken is booked all the same.
    response = client.post("/checkout/", {"bundle": bundle.slug, "key": "k1", "pay": "1"})
    with scope(tenant=tenant_a):
        bundle.items.clear()
    assert "Payment received" in client.post(response.url, {"action": "pay"}, follow=True).content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get(idempotency_key="k1")
        assert order.status == "paid" and ledger_verify(tenant=tenant_a).ok
    assert sale_postings(tenant_a, order) == {"clearing:sandbox": 6000, "platform": -600, "tenant": -5400}


def test_creators_shares_over_the_whole_saved_before_the_admin_refused_them_still_book_the_sale(tenant_a):
    from catalog.models import ItemCreator

    ada, bob = catalog_creator(tenant_a, "Ada"), catalog_creator(tenant_a, "Bob")
    course = catalog_item(tenant_a, title="Shared", price=10000)
    with scope(tenant=tenant_a):
        ItemCreator.objects.bulk_create([ItemCreator(tenant=tenant_a, item=course, creator=ada, share_bp=6000),
                                         ItemCreator(tenant=tenant_a, item=course, creator=bob, share_bp=6000)])
        item_publish_changes(item=course, actor=None)  # published with those shares, which sales pay by
    client = host_client("alpha.test", member(tenant_a))
    assert "Payment received" in buy(client, f"item={course.slug}").content.decode()
    with scope(tenant=tenant_a):
        order = Order.objects.get()
        assert order.status == "paid" and ledger_verify(tenant=tenant_a).ok
    # The creators share all that is left after the platform's fee, in their proportion.
    assert sale_postings(tenant_a, order) == {"clearing:sandbox": 10000, "platform": -1000,
                                              f"creator:{ada.pk}:held": -4500, f"creator:{bob.pk}:held": -4500}


def test_the_refund_form_sent_twice_refunds_once_and_bad_amounts_are_shown_at_the_field(tenant_a, shop):
    course, _ = shop
    learner = member(tenant_a)
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    admin = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
    url = reverse("admin:payments_order_refund", args=[order.pk])
    seen = re.search(r'name="seen" value="(\d+)"', admin.get(url).content.decode()).group(1)
    assert admin.post(url, {"amount": "30.00", "seen": seen, "confirm": "1"}).status_code == 302
    again = admin.post(url, {"amount": "30.00", "seen": seen, "confirm": "1"})  # the same form, sent again
    body = again.content.decode()
    assert again.status_code == 200 and "This payment was refunded meanwhile" in body
    assert 'name="seen" value="3000"' in body  # sending the form now would refund on what is refunded now
    for amount, message in (("0", "Enter an amount above zero."), ("-5", "Enter an amount above zero."),
                            ("1e999999", "Ensure that there are no more than"), ("12.345", "Too many decimals")):
        response = admin.post(url, {"amount": amount, "seen": "3000"})
        assert response.status_code == 200 and message in response.content.decode(), amount
    with scope(tenant=tenant_a):
        order.refresh_from_db()
        assert order.refunded == 3000 and order.payments.get().refunds.count() == 1


def test_the_operator_refunds_on_the_platform_host_on_the_orders_own_accounts(tenant_a, tenant_b, shop):
    """Both storefronts hold accounts with the same codes (platform, tenant, clearing:sandbox); the platform host
    sees every storefront's rows, yet a refund there books on the order's own storefront only."""
    from django_scopes import scopes_disabled

    from marketplace import tenancy
    from tests.conftest import operator_client

    other = catalog_item(tenant_b, title="Beta course", price=5000)
    buy(host_client("beta.test", member(tenant_b)), f"item={other.slug}")
    course, _ = shop
    buy(host_client("alpha.test", member(tenant_a)), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get()
    response = refund(operator_client(), reverse("admin:payments_order_refund", args=[order.pk]),
                      {"amount": "10.00"})
    assert response.status_code == 302
    with scopes_disabled():
        entry = JournalEntry.objects.get(kind="refund")
        assert {p.account.tenant_id for p in entry.postings.select_related("account")} == {tenant_a.pk}
    for tenant in (tenant_a, tenant_b):
        with tenancy.activate(tenant):
            assert ledger_verify(tenant=tenant).ok


def test_a_checkout_key_sent_again_for_another_cart_is_refused_and_the_page_gets_a_new_one(tenant_a, shop):
    """A form sent again (back button) after the learner changed the coupon or what they buy must not send them to
    pay for the first cart: it is refused, and the page's next attempt is a new one."""
    course, _ = shop
    other = catalog_item(tenant_a, title="Other course", price=5000)
    learner = member(tenant_a)
    with scope(tenant=tenant_a):
        Coupon.objects.create(tenant=tenant_a, code="SAVE10", kind=Coupon.Kind.PERCENT, value=1000)
        first = services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k1", item=course)
        for changed in ({"item": other}, {"item": course, "coupon_code": "save10"}):
            with pytest.raises(services.ApplicationError) as refused:
                services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k1", **changed)
            assert (refused.value.code, refused.value.status) == ("idempotency_key_mismatch", 409)
        # The same cart again is the same checkout (the coupon's case does not matter).
        assert services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k1",
                                       item=course).order == first.order
        with_coupon = services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k2", item=other,
                                              coupon_code="save10")
        assert services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k2", item=other,
                                       coupon_code="SAVE10").order == with_coupon.order
        assert Order.objects.count() == 2

    client = host_client("alpha.test", learner)
    response = client.post("/checkout/", {"item": other.slug, "key": "k1", "pay": "1"})
    body = response.content.decode()
    assert response.status_code == 409 and "started for another purchase" in body
    fresh = re.search(r'name="key" value="([0-9a-f]+)"', body).group(1)
    assert fresh != "k1"
    assert client.post("/checkout/", {"item": other.slug, "key": fresh, "pay": "1"}).status_code == 302
