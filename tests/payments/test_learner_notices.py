"""Mail a learner gets when the storefront changes something of theirs: a refund of their order (part or all), and the
team's approval of their application to promote, in the storefront's language and under its name."""

import pytest
from django.core import mail
from django.urls import reverse
from django_scopes import scope

from accounts.models import Role
from payments import services
from payments.models import Order, PaymentSettings, Promoter, Refund
from payments.promoters import promoter_decide
from payments.tasks import refund_notice_send
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(tenant_a, django_capture_on_commit_callbacks):
    course = catalog_item(tenant_a, title="Course", price=10000)
    learner = member(tenant_a, email="refunded@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        buy(host_client("alpha.test", learner), f"item={course.slug}")
    mail.outbox.clear()
    with scope(tenant=tenant_a):
        return Order.objects.get(user=learner)


def refund(tenant, order, amount) -> Refund:
    with scope(tenant=tenant):
        return services.refund_create(payment=order.payments.get(), amount=amount, actor=None)


def test_a_part_refund_tells_the_learner_how_much_and_that_they_keep_access(tenant_a, order):
    part = refund(tenant_a, order, 4000)
    mail.outbox.clear()
    refund_notice_send(tenant_id=tenant_a.pk, refund_id=part.pk)
    (message,) = mail.outbox
    assert message.to == ["refunded@example.com"] and message.from_email.startswith("Alpha Academy <")
    assert message.subject == f"Alpha Academy: refund for order {order.number}"
    assert "¥40.00" in message.body and "you keep access" in message.body
    assert f"http://alpha.test/orders/{order.number}/" in message.body


def test_a_full_refund_tells_the_learner_their_access_has_ended(tenant_a, order):
    whole = refund(tenant_a, order, 10000)
    mail.outbox.clear()
    refund_notice_send(tenant_id=tenant_a.pk, refund_id=whole.pk)
    (message,) = mail.outbox
    body = " ".join(message.body.split())
    assert "¥100.00" in body and "the access it gave you has ended" in body and "you keep access" not in body


def test_a_refund_made_in_the_admin_is_told_to_the_learner(tenant_a, order, django_capture_on_commit_callbacks):
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(reverse("admin:payments_order_refund", args=[order.pk]),
                              {"amount": "40.00", "seen": 0, "reason": "late", "confirm": "1"})
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["refunded@example.com"]]


@pytest.fixture
def applicant(tenant_a, django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
    learner = member(tenant_a, email="applicant@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        host_client("alpha.test", learner).post("/promote/")
    assert not mail.outbox  # applying sends nothing
    with scope(tenant=tenant_a):
        return Promoter.objects.get(user=learner)


def approve(tenant, promoter, django_capture_on_commit_callbacks):
    team = host_client("alpha.test", member(tenant, Role.STAFF, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        team.post(reverse("admin:payments_promoter_changelist"),
                  {"action": "approve", "_selected_action": [promoter.pk]})


def test_a_learner_whose_promoter_application_is_approved_is_told_by_email(
        tenant_a, applicant, django_capture_on_commit_callbacks):
    approve(tenant_a, applicant, django_capture_on_commit_callbacks)
    (message,) = mail.outbox
    assert message.to == ["applicant@example.com"] and message.subject == "Alpha Academy: you are one of our promoters"
    assert "approved you" in message.body and "http://alpha.test/promote/" in message.body

    approve(tenant_a, applicant, django_capture_on_commit_callbacks)  # approved already: nothing new to say
    assert len(mail.outbox) == 1


def test_the_approval_speaks_the_storefronts_language(tenant_a, applicant, django_capture_on_commit_callbacks):
    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    approve(tenant_a, applicant, django_capture_on_commit_callbacks)
    (message,) = mail.outbox
    assert "推广员" in message.subject


def test_a_learner_the_team_invites_gets_one_email_not_two(tenant_a, applicant, django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        promoter_decide(promoter=applicant, status="rejected", actor=None)
    team = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        team.post(reverse("admin:payments_promoter_add"), {"email": "applicant@example.com"})
    (message,) = mail.outbox
    assert "has made you one of its promoters" in message.body
