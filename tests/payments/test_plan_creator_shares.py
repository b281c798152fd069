"""A subscription plan the storefront shares with creators: each payment is divided between the paid items the plan
gives access to, by their prices, as a bundle's is, and each item's creators take their shares of its part."""

import pytest
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from catalog.models import Category
from payments import services
from payments.ledger import ledger_verify
from payments.models import JournalEntry, Order, OrderLine, Posting, Subscription, SubscriptionPlan
from payments.subscriptions import subscriptions_sweep
from tests.conftest import host_client
from tests.factories import catalog_creator, catalog_item, member
from tests.payments.test_checkout import buy
from tests.payments.test_subscriptions import pay_renewal

pytestmark = pytest.mark.django_db


def sale(order) -> dict[str, int]:
    return dict(Posting.objects.filter(entry__order=order, entry__kind=JournalEntry.Kind.SALE)
                .values_list("account__code", "amount"))


def creator_parts(order) -> dict[str, int]:
    return {code: amount for code, amount in sale(order).items() if code.startswith("creator:")}


def held(creator) -> int:
    return -sum(Posting.objects.filter(account__code=f"creator:{creator.pk}:held").values_list("amount", flat=True))


def plan(tenant, *, shared: bool = True, price: int = 5000, slug: str = "all") -> SubscriptionPlan:
    with scope(tenant=tenant):
        return SubscriptionPlan.objects.create(tenant=tenant, name="All access", slug=slug, price=price,
                                               creators_share=shared)


def subscribe(tenant, slug: str = "all"):
    learner = member(tenant)
    client = host_client("alpha.test", learner)
    buy(client, f"plan={slug}")
    with scope(tenant=tenant):
        return learner, client, Order.objects.get(user=learner, status="paid")


def test_a_shared_plan_pays_the_creators_of_the_paid_items_it_covers_by_their_prices(tenant_a):
    person = member(tenant_a, Role.CREATOR)
    ada, bo = catalog_creator(tenant_a, "Ada", user=person), catalog_creator(tenant_a, "Bo")
    cy, dee = catalog_creator(tenant_a, "Cy"), catalog_creator(tenant_a, "Dee")
    catalog_item(tenant_a, title="Course", price=3000, creators=[ada])  # each at 50 %
    catalog_item(tenant_a, title="Talk", price=1000, creators=[bo])
    catalog_item(tenant_a, title="Free taster", price=0, creators=[cy])  # free to all: earns nothing from the plan
    catalog_item(tenant_a, title="Draft", price=5000, creators=[dee], published=False)  # subscribers cannot open it
    catalog_item(tenant_a, title="House notes", price=1000)
    catalog_item(tenant_a, title="Second course", price=1500, creators=[ada])
    plan(tenant_a, price=6500)

    _learner, _client, order = subscribe(tenant_a)
    with scope(tenant=tenant_a):
        line = OrderLine.objects.get(order=order)
        # Items credited alike are one piece: Ada's two courses, Bo's talk, the uncredited house notes.
        assert line.shares == [[None, 3000 + 1500, [[ada.pk, 5000]]], [None, 1000, [[bo.pk, 5000]]],
                               [None, 1000, []]]
        # 10 % fee (650); the 5850 left is divided 4500:1000:1000 between the pieces (4050, 900, 900); each creator
        # takes half of their pieces' part; the storefront keeps the rest.
        parts = sale(order)
        assert parts["platform"] == -650
        assert creator_parts(order) == {f"creator:{ada.pk}:held": -2025, f"creator:{bo.pk}:held": -450}
        assert sum(parts.values()) == 0
        assert ledger_verify(tenant=tenant_a).ok

    # Ada sees the subscription's part among her earnings.
    page = host_client("alpha.test", person).get(reverse("admin:payments_payout_mine")).content.decode()
    assert "20.25" in page and order.number in page


def test_a_plan_the_storefront_keeps_pays_no_creator(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    catalog_item(tenant_a, title="Course", price=3000, creators=[ada])
    plan(tenant_a, shared=False)

    _learner, _client, order = subscribe(tenant_a)
    with scope(tenant=tenant_a):
        assert OrderLine.objects.get(order=order).shares is None
        assert creator_parts(order) == {}
        assert sale(order)["platform"] == -500


def test_a_shared_tier_pays_only_the_creators_of_its_categories(tenant_a):
    ada, bo = catalog_creator(tenant_a, "Ada"), catalog_creator(tenant_a, "Bo")
    data = catalog_item(tenant_a, title="Data Course", price=9900, creators=[ada])
    catalog_item(tenant_a, title="Design Course", price=9900, creators=[bo])
    tier = plan(tenant_a, slug="data", price=2000)
    with scope(tenant=tenant_a):
        category = Category.objects.create(tenant=tenant_a, name="Data", slug="data")
        data.categories.add(category)
        tier.categories.add(category)

    _learner, _client, order = subscribe(tenant_a, "data")
    with scope(tenant=tenant_a):
        assert creator_parts(order) == {f"creator:{ada.pk}:held": -900}  # half of the 1800 left after the fee


def test_a_renewal_is_shared_between_the_items_the_plan_covers_when_it_renews(tenant_a):
    ada, fay = catalog_creator(tenant_a, "Ada"), catalog_creator(tenant_a, "Fay")
    catalog_item(tenant_a, title="Course", price=3000, creators=[ada])
    shared = plan(tenant_a, price=5000)
    learner, client, first = subscribe(tenant_a)
    catalog_item(tenant_a, title="New course", price=3000, creators=[fay])  # published during the first period

    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        renewal = Order.objects.get(user=learner, source="renewal", status="paid")
        assert creator_parts(first) == {f"creator:{ada.pk}:held": -2250}
        assert creator_parts(renewal) == {f"creator:{ada.pk}:held": -1125, f"creator:{fay.pk}:held": -1125}

        # The team stops sharing the plan: the next renewal pays no creator; what was shared stays shared.
        SubscriptionPlan.objects.filter(pk=shared.pk).update(creators_share=False)
        sub.refresh_from_db()
        subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end)
    pay_renewal(client, sub)
    with scope(tenant=tenant_a):
        last = Order.objects.filter(user=learner, source="renewal", status="paid").latest("paid_at")
        assert last.pk != renewal.pk and creator_parts(last) == {}
        assert held(ada) == 2250 + 1125 and held(fay) == 1125
        assert ledger_verify(tenant=tenant_a).ok


@pytest.mark.parametrize("renewing", [1, 4])
def test_a_sweep_reads_a_shared_plans_covered_items_once_however_many_renewals_it_opens(tenant_a, renewing):
    """The covered items and their credits may be the whole catalog: read once per plan and sweep, and every renewal
    the sweep opens is shared alike."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ada = catalog_creator(tenant_a, "Ada")
    catalog_item(tenant_a, title="Course", price=3000, creators=[ada])
    plan(tenant_a, price=5000)
    learners = [subscribe(tenant_a)[0] for _ in range(renewing)]
    with scope(tenant=tenant_a):
        end = max(Subscription.objects.values_list("current_period_end", flat=True))
        with CaptureQueriesContext(connection) as queries:
            assert subscriptions_sweep(tenant=tenant_a, now=end)["renewals_opened"] == renewing
        lines = OrderLine.objects.filter(order__user__in=learners, order__source="renewal")
        assert len({str(line.shares) for line in lines}) == 1 and lines.count() == renewing
    assert sum('"catalog_itemversion"' in query["sql"] for query in queries.captured_queries) == 1


def test_refunding_a_shared_plan_claws_back_the_creators_parts_in_proportion(tenant_a):
    ada, bo = catalog_creator(tenant_a, "Ada"), catalog_creator(tenant_a, "Bo")
    catalog_item(tenant_a, title="Course", price=3000, creators=[ada])
    catalog_item(tenant_a, title="Talk", price=1000, creators=[bo])
    catalog_item(tenant_a, title="House notes", price=1000)
    plan(tenant_a, price=5000)
    learner, _client, order = subscribe(tenant_a)
    with scope(tenant=tenant_a):
        assert (held(ada), held(bo)) == (1350, 450)
        payment = order.payments.get(status="succeeded")
        services.refund_create(payment=payment, amount=1000, actor=None)  # a fifth
        assert (held(ada), held(bo)) == (1350 - 270, 450 - 90)
        services.refund_create(payment=payment, amount=4000, actor=None)  # the rest
        assert (held(ada), held(bo)) == (0, 0)
        assert Subscription.objects.get(user=learner).status == Subscription.Status.ENDED
        assert ledger_verify(tenant=tenant_a).ok


def test_the_plans_page_shows_how_a_payment_is_shared_now(tenant_a):
    from tests.payments.test_admin_money import owner

    catalog_item(tenant_a, title="Course", price=3000, creators=[catalog_creator(tenant_a, "Ada")])
    catalog_item(tenant_a, title="House notes", price=1000)
    shared = plan(tenant_a, price=4000, shared=False)
    team = owner(tenant_a)
    page = team.get(reverse("admin:payments_subscriptionplan_change", args=[shared.pk])).content.decode()
    assert "Platform fee: ¥4.00" in page and "Storefront: ¥36.00" in page and "Ada" not in page

    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.filter(pk=shared.pk).update(creators_share=True)
    page = team.get(reverse("admin:payments_subscriptionplan_change", args=[shared.pk])).content.decode()
    # 3600 after the fee, 3:1 between the course and the notes; Ada takes half of the course's 2700.
    assert "Ada: ¥13.50" in page and "Storefront: ¥22.50" in page


def test_the_plans_page_tells_learners_which_plans_pay_creators(tenant_a):
    plan(tenant_a, slug="shared")
    plan(tenant_a, slug="kept", shared=False)
    page = host_client("alpha.test").get(reverse("payments:plans")).content.decode()
    assert page.count("Part of every payment goes to the creators whose work it opens.") == 1


def test_the_plans_page_says_what_each_plan_opens(tenant_a):
    plan(tenant_a, slug="all")
    tier = plan(tenant_a, slug="data")
    with scope(tenant=tenant_a):
        tier.categories.add(Category.objects.create(tenant=tenant_a, name="Data Science", slug="data"))
    page = host_client("alpha.test").get(reverse("payments:plans")).content.decode()
    assert "Opens the whole catalog." in page and "Opens these categories: Data Science" in page
    assert "Subscribe to the whole catalog" not in page  # not every plan does
