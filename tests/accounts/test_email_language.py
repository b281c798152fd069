"""A learner's language: chosen in the language menu (or on their profile) it is kept on their account, pages speak
it in any browser they sign in on, and every email a storefront sends them is written in it, while the storefront
(Alpha Academy, in English) and its team keep their own."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope

from accounts.models import Role, User
from marketplace.tenancy import tenant_phase
from payments import services
from payments.models import Order, PaymentSettings, Promoter, Subscription, SubscriptionPlan
from payments.subscriptions import subscriptions_sweep
from payments.tasks import refund_notice_send
from recommender.digest import digest_send
from tests.conftest import host_client
from tests.factories import catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase 42"
NOON = datetime.combine(timezone.now().date(), datetime.min.time(), tzinfo=UTC).replace(hour=12)


def page_language(response) -> str:
    html = response.content.decode()
    return html[html.index('<html lang="') + 12:].split('"', 1)[0]


def chinese_reader(tenant, **kwargs) -> User:
    return member(tenant, email="mei@example.com", language="zh-hans", **kwargs)


# --- the rule ---------------------------------------------------------------------------------------------------------

def test_a_language_chosen_in_the_menu_signed_in_is_kept_on_the_account_and_spoken_in_a_new_browser(tenant_a):
    learner = member(tenant_a)
    response = host_client("alpha.test", learner).post("/language/", {"language": "zh-hans", "next": "/browse/"})
    assert response.status_code == 302 and response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    learner.refresh_from_db()
    assert learner.language == "zh-hans"

    new_browser = host_client("alpha.test", learner)  # no language cookie
    assert page_language(new_browser.get("/browse/")) == "zh-hans"
    assert page_language(host_client("alpha.test").get("/browse/")) == "en"  # the storefront's, for anyone else


def test_a_visitors_choice_stays_in_their_browser_and_a_signed_in_persons_language_is_theirs(tenant_a):
    visitor = host_client("alpha.test")
    visitor.post("/language/", {"language": "zh-hans"})
    assert page_language(visitor.get("/browse/")) == "zh-hans"

    english = member(tenant_a, language="en")
    shared = host_client("alpha.test", english)
    shared.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"  # someone else's choice in this browser
    assert page_language(shared.get("/browse/")) == "en"
    english.refresh_from_db()
    assert english.language == "en"


def test_a_language_saved_on_the_profile_is_spoken_at_once(tenant_a):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.post("/account/profile/", {"display_name": "", "language": "zh-hans"}, follow=True)
    assert page_language(response) == "zh-hans"


def test_someone_who_chose_chinese_before_signing_up_keeps_it_for_the_mail_that_follows(tenant_a):
    visitor = host_client("alpha.test")
    visitor.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = visitor.post("/accounts/signup/", {"email": "mei@example.com", "password1": PASSWORD,
                                                  "password2": PASSWORD})
    assert response.status_code == 302
    (confirmation,) = mail.outbox
    assert confirmation.subject == "Alpha Academy：确认您的邮箱地址"
    assert User.objects.get(email="mei@example.com").language == "zh-hans"


def test_signing_in_after_choosing_a_language_keeps_it_on_an_account_without_one(tenant_a):
    member(tenant_a, email="mei@example.com", password=PASSWORD)
    visitor = host_client("alpha.test")
    visitor.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert visitor.post("/accounts/login/", {"login": "mei@example.com", "password": PASSWORD}).status_code == 302
    assert User.objects.get(email="mei@example.com").language == "zh-hans"


# --- each kind of mail ------------------------------------------------------------------------------------------------

def test_receipts_are_in_each_learners_language(tenant_a, django_capture_on_commit_callbacks):
    course = catalog_item(tenant_a, title="Course", price=10000)
    mei, lin, gone = chinese_reader(tenant_a), member(tenant_a, email="lin@example.com"), member(tenant_a)
    User.objects.filter(pk=gone.pk).update(language="fr")  # a language no longer offered: the storefront's
    for learner in (mei, lin, gone):
        with django_capture_on_commit_callbacks(execute=True):
            buy(host_client("alpha.test", learner), f"item={course.slug}")
    subjects = {message.to[0]: message.subject for message in mail.outbox}
    with scope(tenant=tenant_a):
        mei_order, lin_order, gone_order = (Order.objects.get(user=u).number for u in (mei, lin, gone))
    assert subjects["mei@example.com"] == f"Alpha Academy：订单 {mei_order} 的收据"
    assert subjects["lin@example.com"] == f"Alpha Academy: receipt for order {lin_order}"
    assert subjects[gone.email] == f"Alpha Academy: receipt for order {gone_order}"


def test_a_refund_notice_is_in_the_learners_language(tenant_a, django_capture_on_commit_callbacks):
    course = catalog_item(tenant_a, title="Course", price=10000)
    learner = chinese_reader(tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        buy(host_client("alpha.test", learner), f"item={course.slug}")
    with scope(tenant=tenant_a):
        order = Order.objects.get(user=learner)
        refund = services.refund_create(payment=order.payments.get(), amount=4000, actor=None)
    mail.outbox.clear()
    refund_notice_send(tenant_id=tenant_a.pk, refund_id=refund.pk)
    (message,) = mail.outbox
    assert message.subject == f"Alpha Academy：订单 {order.number} 的退款"


def test_a_renewal_email_is_in_the_learners_language(tenant_a, django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        SubscriptionPlan.objects.create(tenant=tenant_a, name="All access", slug="all", price=2900,
                                        interval="month", grace_days=3)
    learner = chinese_reader(tenant_a)
    buy(host_client("alpha.test", learner), "plan=all")
    mail.outbox.clear()
    with scope(tenant=tenant_a):
        sub = Subscription.objects.get(user=learner)
        with django_capture_on_commit_callbacks(execute=True):
            subscriptions_sweep(tenant=tenant_a, now=sub.current_period_end + timedelta(minutes=1))
    (message,) = mail.outbox
    assert message.to == ["mei@example.com"] and message.subject == "Alpha Academy：请续费你的All access订阅"


def test_a_promoters_approval_is_in_their_language_not_the_approving_teams(tenant_a,
                                                                         django_capture_on_commit_callbacks):
    with scope(tenant=tenant_a):
        PaymentSettings.objects.create(tenant=tenant_a, promoters_enabled=True)
    learner = chinese_reader(tenant_a)
    host_client("alpha.test", learner).post("/promote/")
    team = host_client("alpha.test", member(tenant_a, Role.STAFF, mfa=True))
    with scope(tenant=tenant_a):
        promoter = Promoter.objects.get(user=learner)
    with django_capture_on_commit_callbacks(execute=True):
        team.post(reverse("admin:payments_promoter_changelist"),
                  {"action": "approve", "_selected_action": [promoter.pk]})
    (message,) = mail.outbox
    assert message.subject == "Alpha Academy：你已成为我们的推广员"


def test_the_recommendation_digest_is_in_the_learners_language(tenant_a, settings):
    settings.RECOMMENDER_QUIET_HOURS = (22, 8)
    catalog_item(tenant_a, title="Spreadsheets for Planners")
    learner = chinese_reader(tenant_a)
    with tenant_phase(tenant_a):
        assert digest_send(tenant=tenant_a, user=learner, now=NOON)
    (message,) = mail.outbox
    assert message.subject == "Alpha Academy 的新内容与为你推荐"


def test_an_invitation_to_someone_with_an_account_is_in_their_language(tenant_a,
                                                                       django_capture_on_commit_callbacks):
    chinese_reader(tenant_a)
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    with django_capture_on_commit_callbacks(execute=True):
        for email in ("mei@example.com", "new@example.com"):
            owner.post("/admin/accounts/invitation/add/", {"email": email, "role": Role.CREATOR})
    subjects = {message.to[0]: message.subject for message in mail.outbox}
    assert subjects == {"mei@example.com": "诚邀您在Alpha Academy发布作品",
                        "new@example.com": "You are invited to publish on Alpha Academy"}


def test_a_password_reset_asked_from_a_new_browser_is_in_the_account_holders_language(tenant_a):
    chinese_reader(tenant_a)
    host_client("alpha.test").post("/accounts/password/reset/", {"email": "mei@example.com"})
    (message,) = mail.outbox
    assert message.subject == "Alpha Academy：重置密码"
