"""An order is shared in one split: the platform's fee and the commissions are their agreed share of the sale, and
the creators are paid by the shares the item was published with, as sold."""

import uuid

from django_scopes import scope

from catalog.models import Bundle, ItemCreator
from payments import services
from payments.models import JournalEntry, Posting
from tests.factories import catalog_creator, catalog_item, member


def _sale(order) -> dict[str, int]:
    return dict(Posting.objects.filter(entry__order=order, entry__kind=JournalEntry.Kind.SALE)
                .values_list("account__code", "amount"))


def _buy(tenant, **what):
    started = services.checkout_start(tenant=tenant, user=member(tenant), idempotency_key=uuid.uuid4().hex, **what)
    services.payment_succeed(payment=started.payment)
    return started.order


def test_a_bundles_platform_fee_is_the_agreed_share_of_the_sale_not_a_sum_of_rounded_pieces(tenant_a):
    # 10 % of 1010 is 101; split per item (505 each) it was 51 + 51.
    one = catalog_item(tenant_a, title="One", price=505)
    two = catalog_item(tenant_a, title="Two", price=505)
    with scope(tenant=tenant_a):
        bundle = Bundle.objects.create(tenant=tenant_a, title="Both", slug="both", price=1010, is_published=True)
        bundle.items.set([one, two])
        order = _buy(tenant_a, bundle=bundle)
        parts = _sale(order)
    assert parts["platform"] == -101
    assert sum(parts.values()) == 0


def test_a_sale_pays_creators_the_shares_of_the_published_version_not_unpublished_edits(tenant_a):
    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])  # published with Ada at 50 %
    with scope(tenant=tenant_a):
        ItemCreator.objects.filter(item=course).update(share_bp=1000)  # edited, not published again
        order = _buy(tenant_a, item=course)
        recorded = JournalEntry.objects.filter(kind=JournalEntry.Kind.PUBLICATION).order_by("-sequence").first()
        assert recorded.record["creators"] == [[ada.pk, 5000]]
        assert _sale(order)[f"creator:{ada.pk}:held"] == -4500  # 50 % of the 9000 left after the 10 % fee


def test_an_order_keeps_the_creators_shares_it_was_sold_with(tenant_a):
    from catalog.services import item_publish_changes

    ada = catalog_creator(tenant_a, "Ada")
    course = catalog_item(tenant_a, title="Course", price=10000, creators=[ada])
    with scope(tenant=tenant_a):
        started = services.checkout_start(tenant=tenant_a, user=member(tenant_a), idempotency_key="k-1", item=course)
        ItemCreator.objects.filter(item=course).update(share_bp=0)
        item_publish_changes(item=course, actor=None)  # a minute later the team publishes Ada's share as 0
        services.payment_succeed(payment=started.payment)
        assert _sale(started.order)[f"creator:{ada.pk}:held"] == -4500
        later = _buy(tenant_a, item=course)
        assert f"creator:{ada.pk}:held" not in _sale(later) or _sale(later)[f"creator:{ada.pk}:held"] == 0
