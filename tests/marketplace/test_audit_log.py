"""The audit log says in words what happened and on which record, and takes only actions it can say."""

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from marketplace.models import AuditLog
from marketplace.services import audit_log_write
from payments.models import Order
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def test_an_action_the_log_cannot_say_in_words_is_refused_and_nothing_is_written(tenant_a):
    with pytest.raises(ValueError, match="not an audit action"):
        audit_log_write(tenant=tenant_a, actor=None, action="payments.something_new")
    with scopes_disabled():
        assert not AuditLog.objects.exists()


def test_the_team_reads_what_happened_in_words_with_a_link_to_the_record_and_its_details(tenant_a):
    course = catalog_item(tenant_a, title="Course", price=4900)
    learner = member(tenant_a, email="lin@example.com")
    buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        paid = AuditLog.objects.get(action="payments.payment_succeeded")
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    changelist = reverse("admin:marketplace_auditlog_changelist")

    listing = staff.get(changelist).content.decode()
    assert "Payment succeeded" in listing and "Item approved and published" in listing
    assert "payments.payment_succeeded</td>" not in listing
    assert f'<a href="{reverse("admin:payments_order_change", args=[order.pk])}">Order {order.pk}</a>' in listing
    # The filter offers the actions the log holds, in words, and keeps to the one chosen.
    assert '?action=payments.payment_succeeded"' in listing and "Refund made" not in listing
    filtered = staff.get(changelist, {"action": "payments.payment_succeeded"}).content.decode()
    assert "Payment succeeded" in filtered and "Checkout started</td>" not in filtered

    entry = staff.get(reverse("admin:marketplace_auditlog_change", args=[paid.pk])).content.decode()
    assert "<dt>amount</dt><dd>4900</dd>" in entry and "<dt>provider</dt><dd>sandbox</dd>" in entry

    staff.cookies["django_language"] = "zh-hans"
    assert "支付成功" in staff.get(changelist).content.decode()


def test_a_record_the_viewer_may_not_open_or_that_no_longer_exists_is_named_without_a_link(tenant_a):
    learner = member(tenant_a)
    with scope(tenant=tenant_a):
        audit_log_write(tenant=tenant_a, actor=learner, action="recommender.personalisation_changed", target=learner,
                        data={"personalised": False})
        AuditLog.objects.create(tenant=tenant_a, action="old.retired", target_type="old.thing", target_id="7")
    staff = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))

    listing = staff.get(reverse("admin:marketplace_auditlog_changelist")).content.decode()
    assert f"User {learner.pk}</td>" in listing
    assert reverse("admin:accounts_user_change", args=[learner.pk]) not in listing
    assert "old.thing 7</td>" in listing and "old.retired" in listing  # an older release's action reads as its code
