"""Tracked links: a visit through a channel's link is counted, and the order it leads to is the channel's."""

import pytest
from django_scopes import scope, scopes_disabled

from distribution.models import Channel, ChannelClick
from payments.models import Order
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def test_a_tracked_visit_before_sign_up_attributes_the_order_to_the_channel(tenant_a):
    item = catalog_item(tenant_a, title="Course", price=5000)
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Weibo", kind="weibo")
    visitor = host_client("alpha.test")
    assert visitor.get(f"/item/{item.slug}/?zc={channel.code}&utm_source=weibo").status_code == 200
    learner = member(tenant_a)
    visitor.force_login(learner)
    buy(visitor, f"item={item.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        click = ChannelClick.objects.get()
    assert order.channel == channel and click.item == item
    assert order.attribution["channel"]["click"] == click.pk and order.attribution["channel"]["kind"] == "weibo"


def test_another_storefronts_code_counts_nothing(tenant_a, tenant_b):
    item = catalog_item(tenant_a, title="Course", price=5000)
    with scopes_disabled():
        foreign = Channel.objects.create(tenant=tenant_b, name="Theirs", kind="webhook")
    host_client("alpha.test").get(f"/item/{item.slug}/?zc={foreign.code}")
    with scopes_disabled():
        assert not ChannelClick.objects.exists()
