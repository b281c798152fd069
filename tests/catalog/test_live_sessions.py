"""What the page of a live session says about when it takes place."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.conftest import host_client
from tests.factories import catalog_item, grant, member

pytestmark = pytest.mark.django_db


def _live(tenant, starts_at, **fields):
    return catalog_item(tenant, title="SQL Live Workshop", kind="live", price=9900, duration_minutes=60,
                        starts_at=starts_at, join_url="https://meet.example.com/x", **fields)


def _buy_box(page: str) -> str:
    return re.search(r'<div class="buy-box".*?</div>', page, re.S).group(0)


def test_a_prospective_buyer_sees_when_a_live_session_starts_and_in_which_zone(tenant_a):
    live = _live(tenant_a, datetime(2030, 3, 1, 12, 0, tzinfo=UTC))
    for client in (host_client("alpha.test"), host_client("alpha.test", member(tenant_a))):
        box = _buy_box(client.get(f"/item/{live.slug}/").content.decode())
        assert "Live on March 1, 2030, noon (UTC)" in box
        assert "Buy now" in box or "Sign in" in box


def test_the_card_of_a_live_session_shows_its_start(tenant_a):
    _live(tenant_a, datetime(2030, 3, 1, 12, 0, tzinfo=UTC))
    page = host_client("alpha.test").get("/browse/").content.decode()
    assert '<time datetime="2030-03-01T12:00:00+00:00">March 1, 2030, noon (UTC)</time>' in page


def test_a_chinese_page_writes_the_start_in_chinese_with_its_zone(tenant_a):
    live = _live(tenant_a, datetime(2030, 3, 1, 12, 0, tzinfo=UTC))
    client = host_client("alpha.test")
    client.cookies["django_language"] = "zh-hans"
    box = _buy_box(client.get(f"/item/{live.slug}/").content.decode())
    assert "2030年3月1日 12:00（UTC）开播" in box


def test_a_session_under_way_says_it_is_live_now(tenant_a):
    live = _live(tenant_a, timezone.now() - timedelta(minutes=10))
    learner = member(tenant_a)
    grant(tenant_a, learner, item=live)
    box = _buy_box(host_client("alpha.test", learner).get(f"/item/{live.slug}/").content.decode())
    assert "Live now: it started at" in box
    assert "Join the live session" in box


def test_a_past_session_is_sold_as_what_took_place_not_as_upcoming(tenant_a):
    live = _live(tenant_a, timezone.now() - timedelta(days=2))
    learner = member(tenant_a)
    grant(tenant_a, learner, item=live)
    for client in (host_client("alpha.test", member(tenant_a)), host_client("alpha.test", learner)):
        box = _buy_box(client.get(f"/item/{live.slug}/").content.decode())
        assert "This live session took place on" in box
        assert "Live on" not in box and "appears here 30 minutes before the start" not in box


@pytest.mark.parametrize(("zone", "shown"), [
    ("UTC", "March 1, 2030, noon (UTC)"), ("Asia/Shanghai", "March 1, 2030, 8 p.m. (UTC+8)"),
    ("Asia/Kolkata", "March 1, 2030, 5:30 p.m. (UTC+5:30)"), ("America/New_York", "March 1, 2030, 7 a.m. (UTC-5)")])
def test_a_start_is_written_in_the_active_time_zone_and_says_which(zone, shown):
    from django.template import Context, Template
    from django.utils import translation

    template = Template('{% load zhiku %}{{ start|date:"DATETIME_FORMAT" }} ({{ start|utc_offset }})')
    with timezone.override(zone), translation.override("en"):
        assert template.render(Context({"start": datetime(2030, 3, 1, 12, 0, tzinfo=UTC)})) == shown
