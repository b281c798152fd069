"""Traffic allocation: the seed formula, budgets that follow shares, the exploration floor, and measured inputs."""

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from hypothesis import given
from hypothesis import strategies as st

from distribution.allocation import allocation_recompute, budgets, shares
from distribution.models import Allocation, Channel, ChannelClick, ChannelStat, DistributionSettings


def test_the_worked_example_follows_the_formula():
    # interest 0.6/0.3/0.1, exposure 0.5/0.3/0.2: 0.30, 0.09, 0.02 over 0.41. (The source paper prints
    # 0.5556/0.2778/0.1667, which its own formula does not give.)
    got = shares([0.6, 0.3, 0.1], [0.5, 0.3, 0.2])
    assert [round(s, 4) for s in got] == [0.7317, 0.2195, 0.0488]


def test_budgets_follow_shares_and_add_up():
    assert budgets(100, [0.7317, 0.2195, 0.0488]) == [73, 22, 5]
    assert budgets(None, [0.5, 0.5]) == [None, None]


def test_a_channel_without_data_gets_the_exploration_floor():
    got = shares([0.6, 0.3, 0.0], [0.5, 0.3, 0.0], measured=[True, True, False], floor=0.05)
    assert got[2] == pytest.approx(0.05)
    assert got[0] / got[1] == pytest.approx(0.30 / 0.09)
    assert sum(got) == pytest.approx(1.0)
    assert shares([0.0, 0.0], [0.0, 0.0], measured=[False, False], floor=0.05) == [0.5, 0.5]


@given(st.lists(st.tuples(st.floats(0.001, 1), st.floats(0.001, 1), st.booleans()), min_size=1, max_size=8),
       st.integers(0, 10_000))
def test_shares_always_sum_to_one_and_budgets_to_the_total(rows, total):
    interest, exposure, measured = (list(col) for col in zip(*rows, strict=True))
    got = shares(interest, exposure, measured=measured, floor=0.05)
    assert sum(got) == pytest.approx(1.0) and all(s >= 0 for s in got)
    assert sum(budgets(total, got)) == total


def test_recompute_measures_each_channel_and_explores_the_new_one(tenant_a):
    today = timezone.localdate()
    with scopes_disabled():
        DistributionSettings.objects.create(tenant=tenant_a, daily_push_budget=50, exploration_floor=0.1)
        wechat = Channel.objects.create(tenant=tenant_a, name="WeChat", kind="wechat")
        hook = Channel.objects.create(tenant=tenant_a, name="Hook", kind="webhook", endpoint_url="http://x.test/")
        fresh = Channel.objects.create(tenant=tenant_a, name="New feed", kind="feed")
        ChannelStat.objects.create(tenant=tenant_a, channel=wechat, day=today - timezone.timedelta(days=1),
                                   impressions=1000)
        ChannelClick.objects.bulk_create([ChannelClick(tenant=tenant_a, channel=wechat, visitor=f"w{i}")
                                          for i in range(20)]
                                         + [ChannelClick(tenant=tenant_a, channel=hook, visitor=f"h{i}")
                                            for i in range(10)])
    with scope(tenant=tenant_a):
        rows = {a.channel_id: a for a in allocation_recompute(tenant=tenant_a)}
    assert rows[fresh.pk].explored and rows[fresh.pk].share == pytest.approx(0.1)
    # WeChat reports 1000 impressions and 20 clicks (2 % CTR); the hook's 10 clicks count as 500 impressions.
    assert rows[wechat.pk].exposure_source == "impressions" and rows[wechat.pk].exposure == 1000
    assert rows[hook.pk].exposure_source == "clicks" and rows[hook.pk].exposure == pytest.approx(500)
    assert rows[wechat.pk].share > rows[hook.pk].share
    assert sum(a.budget for a in rows.values()) == 50
    with scope(tenant=tenant_a):
        allocation_recompute(tenant=tenant_a)  # recomputing the same day replaces its rows
        assert Allocation.objects.filter(day=today).count() == 3


def test_a_negative_exploration_share_saved_earlier_explores_nothing(tenant_a):
    with scopes_disabled():  # saved before the field refused it
        DistributionSettings.objects.create(tenant=tenant_a, daily_push_budget=100, exploration_floor=-0.5)
        measured = Channel.objects.create(tenant=tenant_a, name="Measured", kind="feed")
        fresh = Channel.objects.create(tenant=tenant_a, name="New", kind="feed")
        ChannelClick.objects.create(tenant=tenant_a, channel=measured, visitor="v1")
    with scope(tenant=tenant_a):
        rows = {a.channel_id: a for a in allocation_recompute(tenant=tenant_a)}
    assert (rows[measured.pk].share, rows[measured.pk].budget) == (pytest.approx(1.0), 100)
    assert (rows[fresh.pk].share, rows[fresh.pk].budget) == (0.0, 0)
