"""A storefront's time zone: its team types times in it, its pages, emails and receipts show times in it, and its
work in the background runs in it. A Chinese storefront lives in Beijing time (UTC+8); the platform host in UTC."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import shared_task
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog import services as catalog
from marketplace.models import AuditLog, Tenant
from marketplace.tenancy import TenantTask
from payments.models import Order, Subscription, SubscriptionPlan
from payments.tasks import receipt_send
from tests.catalog.test_admin import item_form
from tests.conftest import host_client, operator_client
from tests.factories import UserFactory, catalog_item, grant, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


@shared_task(base=TenantTask)
def storefront_clock_and_language(*, tenant_id: int) -> tuple[str, str]:
    return timezone.get_current_timezone_name(), translation.get_language()


def in_time_zone(tenant: Tenant, name: str) -> Tenant:
    tenant.time_zone = name
    tenant.save(update_fields=["time_zone"])
    return tenant


@pytest.fixture
def lotus(tenant_a):
    tenant_a.default_language, tenant_a.currency = "zh-hans", "CNY"
    tenant_a.save(update_fields=["default_language", "currency"])
    return in_time_zone(tenant_a, "Asia/Shanghai")


def test_a_live_session_the_team_types_in_beijing_time_opens_its_join_link_at_that_time(lotus):
    """The team types the start as its own clock reads, ten minutes from now in Beijing: the learners who paid find
    the join link now, not eight hours after the session."""
    owner = member(lotus, Role.OWNER, mfa=True)
    live = catalog_item(lotus, title="直播答疑", kind="live", price=0, published=False, language="zh-hans",
                        starts_at=timezone.now() + timedelta(days=1))
    local = (timezone.now() + timedelta(minutes=10)).astimezone(SHANGHAI)
    response = host_client("alpha.test", owner).post(
        reverse("admin:catalog_contentitem_change", args=[live.pk]),
        item_form(live, duration_minutes=60, join_url="https://meet.example.com/live",
                  starts_at_0=local.strftime("%Y-%m-%d"), starts_at_1=local.strftime("%H:%M:%S")))
    assert response.status_code == 302, response.content.decode()[:1500]
    reviewer = UserFactory(email="reviewer@alpha.test")
    with scope(tenant=lotus):
        live.refresh_from_db()
        catalog.item_submit(item=live, actor=reviewer)
        catalog.item_approve(item=live, actor=reviewer)
    assert abs(live.starts_at - (timezone.now() + timedelta(minutes=10))) < timedelta(minutes=2), live.starts_at

    learner = member(lotus)
    grant(lotus, learner, item=live)
    page = host_client("alpha.test", learner).get(f"/item/{live.slug}/").content.decode()
    assert 'href="https://meet.example.com/live"' in page
    assert f"{local:%H:%M}" in page and "UTC+8" in page


def test_a_chinese_storefront_shows_a_live_sessions_start_in_beijing_time(lotus):
    start = datetime(2030, 3, 1, 11, 30, tzinfo=UTC)  # 19:30 in Beijing
    live = catalog_item(lotus, title="直播：数据分析", kind="live", price=0, starts_at=start, language="zh-hans")
    learner = member(lotus)
    grant(lotus, learner, item=live)
    page = host_client("alpha.test", learner).get(f"/item/{live.slug}/").content.decode()
    when = re.search(r'<p class="live-when">.*?</p>', page, re.S).group(0)
    assert "19:30" in when and "UTC+8" in when, when


def test_the_receipt_of_a_chinese_storefront_is_dated_in_beijing_time(lotus, django_capture_on_commit_callbacks):
    course = catalog_item(lotus, title="课程", price=9900)
    learner = member(lotus)
    with django_capture_on_commit_callbacks(execute=True):
        buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scopes_disabled():
        order = Order.objects.get(user=learner)
        Order.objects.filter(pk=order.pk).update(paid_at=datetime(2030, 3, 1, 20, 30, tzinfo=UTC))  # 3月2日 04:30
    mail.outbox.clear()
    receipt_send(tenant_id=lotus.pk, order_id=order.pk)
    assert "2030年3月2日 04:30 (UTC+8)" in mail.outbox[-1].body, mail.outbox[-1].body  # the zone said, as a live one's
    page = host_client("alpha.test", learner).get(f"/orders/{order.number}/").content.decode()
    assert '<time datetime="2030-03-02T04:30:00+08:00">2030年3月2日 04:30 (UTC+8)</time>' in page


def test_the_subscription_page_of_a_chinese_storefront_dates_the_renewal_in_beijing_time(lotus):
    learner = member(lotus)
    end = datetime(2030, 6, 30, 18, 0, tzinfo=UTC)  # 7月1日 02:00 in Beijing
    with scopes_disabled():
        plan = SubscriptionPlan.objects.create(tenant=lotus, name="月卡", slug="monthly", interval="month", price=4900)
    access = grant(lotus, learner, whole_catalog=True, starts_at=end - timedelta(days=30), ends_at=end)
    with scopes_disabled():
        Subscription.objects.create(tenant=lotus, user=learner, plan=plan, price=4900, currency="CNY",
                                    interval="month", status="active", billing_day=30, entitlement=access,
                                    current_period_start=end - timedelta(days=30), current_period_end=end)
    page = host_client("alpha.test", learner).get("/subscription/").content.decode()
    assert "2030年7月1日" in page and "2030年6月30日" not in page


def test_the_owner_sets_the_storefronts_time_zone_on_its_page(tenant_a):
    """An American school onboarded in UTC: its owner moves it to New York time, and a session at 23:30 UTC is then
    shown on the evening before, in New York time."""
    live = catalog_item(tenant_a, title="Evening Q&A", kind="live", starts_at=datetime(2030, 1, 15, 23, 30, tzinfo=UTC))
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    change = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
    assert 'name="time_zone"' in owner.get(change).content.decode()
    response = owner.post(change, {"name": tenant_a.name, "primary_color": tenant_a.primary_color,
                                   "default_language": "en", "time_zone": "America/New_York"})
    assert response.status_code == 302, response.content.decode()[:1500]
    tenant_a.refresh_from_db()
    assert tenant_a.time_zone == "America/New_York"
    when = re.search(r'<p class="live-when">.*?</p>', host_client("alpha.test").get(f"/item/{live.slug}/")
                     .content.decode(), re.S).group(0)
    assert "Jan. 15, 2030, 6:30 p.m." in when and "UTC-5" in when, when

    refused = owner.post(change, {"name": tenant_a.name, "primary_color": tenant_a.primary_color,
                                  "default_language": "en", "time_zone": "Mars/Olympus_Mons"})
    assert "time_zone" in refused.context["adminform"].form.errors


def test_the_operator_onboards_a_storefront_in_the_time_zone_of_its_language_unless_told_another(db):
    operator = operator_client()

    def onboard(slug: str, language: str, **time_zone) -> Tenant:
        response = operator.post(reverse("admin:marketplace_tenant_add"), {
            "name": slug.title(), "slug": slug, "host": f"{slug}.test", "primary_color": "#0f766e",
            "default_language": language, "currency": "CNY", "platform_fee_bp": 1000,
            "owner_email": f"owner@{slug}.test", **time_zone})
        assert response.status_code == 302, response.content.decode()[:1500]
        return Tenant.objects.get(slug=slug)

    assert onboard("lotus", "zh-hans").time_zone == "Asia/Shanghai"
    assert onboard("acme", "en").time_zone == "UTC"
    assert onboard("maple", "en", time_zone="America/Toronto").time_zone == "America/Toronto"


def test_the_platform_host_stays_in_utc_and_a_storefronts_work_runs_in_its_zone_and_language(lotus):
    """The operator's admin reads and shows times in UTC whichever storefront's rows it shows; a storefront's task
    runs in the storefront's time zone and language, and leaves the worker's as they were."""
    with scopes_disabled():
        AuditLog.objects.create(tenant=lotus, action="test.noted")
        AuditLog.objects.filter(action="test.noted").update(created_at=datetime(2030, 3, 1, 23, 15, tzinfo=UTC))
    assert host_client("alpha.test").get("/").status_code == 200  # in Beijing time, which it puts back after
    page = operator_client().get(reverse("admin:marketplace_auditlog_changelist") + "?action=test.noted")
    assert "March 1, 2030, 11:15 p.m." in page.content.decode()  # 3月2日 07:15 in Beijing

    worker = timezone.get_current_timezone_name(), translation.get_language()
    assert storefront_clock_and_language(tenant_id=lotus.pk) == ("Asia/Shanghai", "zh-hans")
    assert (timezone.get_current_timezone_name(), translation.get_language()) == worker
