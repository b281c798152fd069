"""The recommendation digest: what it sends and when, its tracked links, one-click unsubscribe and the settings."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Membership, Role, User
from marketplace.models import AuditLog
from marketplace.tenancy import tenant_phase
from recommender.digest import digest_send, learners_due, quiet_now, unsubscribe_token
from recommender.models import Event, LearnerPreference
from tests.conftest import host_client
from tests.factories import TenantFactory, catalog_item, grant, member

pytestmark = pytest.mark.django_db

NOON = datetime.combine(timezone.now().date(), datetime.min.time(), tzinfo=UTC).replace(hour=12)


@pytest.fixture(autouse=True)
def digest_clock(settings):
    """Quiet from 22:00 to 08:00 in the storefront's time zone (UTC unless a test gives it another), so that NOON is
    never quiet and tests do not depend on the real clock."""
    settings.RECOMMENDER_QUIET_HOURS = (22, 8)


@pytest.fixture
def shelf(tenant_a):
    return [catalog_item(tenant_a, title=title, price=price) for title, price in
            (("Spreadsheets for Planners", 0), ("SQL in a Week", 2900), ("Charts that Speak", 4900))]


def send(tenant, user, now) -> bool:
    with tenant_phase(tenant):
        return digest_send(tenant=tenant, user=user, now=now)


def preference(tenant, user, **fields) -> LearnerPreference:
    with scopes_disabled():
        row, _created = LearnerPreference.objects.update_or_create(tenant=tenant, user=user, defaults=fields)
    return row


def links_in(text: str) -> list[str]:
    return re.findall(r"http://alpha\.test(/r/[^/\s\"]+/)", text)


def test_the_digest_is_one_email_with_new_items_tracked_links_and_one_click_unsubscribe(tenant_a, shelf, mailoutbox):
    learner = member(tenant_a, email="lin@example.com")
    grant(tenant_a, learner, item=shelf[1])  # owned: never suggested
    assert send(tenant_a, learner, NOON) is True
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["lin@example.com"]
    assert message.subject == "New and recommended for you at Alpha Academy"
    assert "Spreadsheets for Planners" in message.body and "Charts that Speak" in message.body
    assert "SQL in a Week" not in message.body
    assert len(links_in(message.body)) == 2

    unsubscribe = re.fullmatch(r"<(http://alpha\.test/recommendations/unsubscribe/[^/]+/)>",
                               message.extra_headers["List-Unsubscribe"])
    assert unsubscribe, message.extra_headers
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.group(1) in message.body

    (html, mimetype), = message.alternatives
    assert mimetype == "text/html"
    assert "Charts that Speak" in html and "SQL in a Week" not in html
    assert sorted(links_in(html)) == sorted(links_in(message.body))
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).last_digest_at == NOON


def test_a_second_digest_right_after_is_not_sent(tenant_a, shelf, mailoutbox):
    learner = member(tenant_a)
    assert send(tenant_a, learner, NOON)
    catalog_item(tenant_a, title="Brand New")
    assert send(tenant_a, learner, NOON + timedelta(minutes=1)) is False
    assert send(tenant_a, learner, NOON + timedelta(days=6, hours=23)) is False
    assert len(mailoutbox) == 1


def test_weekly_sends_again_after_seven_days_and_daily_after_one(tenant_a, shelf, mailoutbox):
    weekly, daily = member(tenant_a), member(tenant_a)
    preference(tenant_a, daily, digest="daily")
    assert send(tenant_a, weekly, NOON) and send(tenant_a, daily, NOON)
    assert not send(tenant_a, daily, NOON + timedelta(hours=23))
    assert send(tenant_a, daily, NOON + timedelta(days=1))
    assert not send(tenant_a, weekly, NOON + timedelta(days=1))
    assert send(tenant_a, weekly, NOON + timedelta(days=7))
    assert [m.to for m in mailoutbox] == [[weekly.email], [daily.email], [daily.email], [weekly.email]]


def test_nothing_is_sent_in_quiet_hours_of_the_storefronts_time_zone(tenant_a, shelf, mailoutbox):
    tenant_a.time_zone = "Asia/Shanghai"  # UTC+8
    tenant_a.save(update_fields=["time_zone"])
    learner = member(tenant_a)
    late_evening_in_shanghai = NOON.replace(hour=15)  # 23:00 there
    early_morning_in_shanghai = NOON.replace(hour=23, minute=30)  # 07:30 the next day there
    with tenant_phase(tenant_a):
        assert quiet_now(late_evening_in_shanghai) and quiet_now(early_morning_in_shanghai)
    assert send(tenant_a, learner, late_evening_in_shanghai) is False
    assert send(tenant_a, learner, early_morning_in_shanghai) is False
    assert mailoutbox == []
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).last_digest_at is None
    assert send(tenant_a, learner, NOON.replace(hour=0, minute=0))  # 08:00 there
    assert len(mailoutbox) == 1


def test_an_american_storefronts_digest_keeps_quiet_at_three_in_the_morning_new_york_time(tenant_b, mailoutbox):
    tenant_b.time_zone = "America/New_York"
    tenant_b.save(update_fields=["time_zone"])
    catalog_item(tenant_b, title="Spreadsheets for Planners")
    learner = member(tenant_b)
    assert send(tenant_b, learner, datetime(2030, 1, 15, 8, 0, tzinfo=UTC)) is False  # 03:00 in New York
    assert mailoutbox == []
    assert send(tenant_b, learner, datetime(2030, 1, 15, 14, 0, tzinfo=UTC)) is True  # 09:00 there
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("hours, hour, quiet", [
    ((22, 8), 21, False), ((22, 8), 22, True), ((22, 8), 3, True), ((22, 8), 8, False),
    ((1, 5), 0, False), ((1, 5), 1, True), ((1, 5), 4, True), ((1, 5), 5, False),
    ((0, 0), 12, False),
])
def test_quiet_hours_wrap_around_midnight(settings, hours, hour, quiet):
    settings.RECOMMENDER_QUIET_HOURS = hours
    assert quiet_now(NOON.replace(hour=hour)) is quiet


def test_off_never_sends(tenant_a, shelf, mailoutbox):
    learner = member(tenant_a)
    preference(tenant_a, learner, digest="off")
    for days in (0, 1, 8, 400):
        assert send(tenant_a, learner, NOON + timedelta(days=days)) is False
    assert mailoutbox == []


def test_nothing_to_say_sends_nothing_and_counts_as_the_periods_digest(tenant_a, mailoutbox):
    """No email without anything in it. The check still counts as the period's digest: the learner is next due a
    period later, not at every hourly beat (where they would hold a place in the batch; see the next test)."""
    learner = member(tenant_a)
    catalog_item(tenant_a, title="Draft", published=False)
    assert send(tenant_a, learner, NOON) is False
    assert mailoutbox == []
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).last_digest_at == NOON
    with tenant_phase(tenant_a):
        assert learners_due(now=NOON + timedelta(hours=1)) == []
        assert learners_due(now=NOON + timedelta(days=7)) == [learner.pk]


def test_a_learner_with_nothing_new_does_not_hold_the_hourly_batch(tenant_a, mailoutbox):
    """Each hourly beat takes at most ``PER_RUN`` due learners. A learner whose digest has nothing in it (they own
    everything on sale) gets no email; if that left them due, they would be first in line at every beat, and on a
    storefront with more due learners than a batch holds the learners after them would never get a digest."""
    only_item = catalog_item(tenant_a, title="The only item", price=100)
    owns_everything = member(tenant_a, email="first@example.com")
    grant(tenant_a, owns_everything, item=only_item)
    waiting = member(tenant_a, email="second@example.com")
    learners = {user.pk: user for user in (owns_everything, waiting)}
    for hour in range(3):  # three hourly beats, each with a batch of one learner
        beat = NOON + timedelta(hours=hour)
        with tenant_phase(tenant_a):
            due = learners_due(now=beat, limit=1)
        for user_id in due:
            send(tenant_a, learners[user_id], beat)
    assert [m.to for m in mailoutbox] == [["second@example.com"]]


@pytest.mark.parametrize("digest, period", [("daily", timedelta(days=1)), ("weekly", timedelta(days=7))])
def test_a_digest_is_due_again_at_the_same_beat_a_period_later(tenant_a, shelf, mailoutbox, digest, period):
    """The hourly beat lists the due learners at minute 10, and each learner's own task sends a few seconds later,
    with its own clock. The same beat a period later is then a few seconds short of a whole period: without some
    slack the digest would slip an hour each time, until it ran into the quiet hours and skipped a day. The slack
    is under an hour, so a digest never comes a beat early."""
    learner = member(tenant_a)
    preference(tenant_a, learner, digest=digest)
    beat = NOON.replace(minute=10)
    with tenant_phase(tenant_a):
        assert learners_due(now=beat) == [learner.pk]
    assert send(tenant_a, learner, beat + timedelta(seconds=3))

    with tenant_phase(tenant_a):
        assert learners_due(now=beat + period - timedelta(hours=1)) == []
        assert learners_due(now=beat + period) == [learner.pk]
    assert not send(tenant_a, learner, beat + period - timedelta(hours=1))
    assert send(tenant_a, learner, beat + period + timedelta(seconds=3))  # the task's own check agrees
    assert len(mailoutbox) == 2


def test_learners_due_lists_only_the_due_learners_of_the_open_storefront(tenant_a, tenant_b):
    never_chose = member(tenant_a, email="never@example.com")
    off = member(tenant_a, email="off@example.com")
    recent = member(tenant_a, email="recent@example.com")
    weekly_due = member(tenant_a, email="weekly@example.com")
    daily_due = member(tenant_a, email="daily@example.com")
    first_daily = member(tenant_a, email="first-daily@example.com")
    member(tenant_a, Role.STAFF, email="staff@example.com")
    gone = member(tenant_a, email="gone@example.com")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    member(tenant_b, email="beta-only@example.com")
    both = member(tenant_a, email="both@example.com")
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_b, user=both, role=Role.LEARNER)
    preference(tenant_b, both, digest="off")  # off on the other storefront only
    preference(tenant_a, off, digest="off")
    preference(tenant_a, recent, digest="weekly", last_digest_at=NOON - timedelta(days=3))
    preference(tenant_a, weekly_due, digest="weekly", last_digest_at=NOON - timedelta(days=7))
    preference(tenant_a, daily_due, digest="daily", last_digest_at=NOON - timedelta(hours=25))
    preference(tenant_a, first_daily, digest="daily")

    with tenant_phase(tenant_a):
        due = learners_due(now=NOON)
        # Longest waiting first: those never sent a digest (in the order they joined), then the oldest digest.
        assert due == [never_chose.pk, first_daily.pk, both.pk, weekly_due.pk, daily_due.pk]
        assert learners_due(now=NOON, limit=2) == due[:2]
        assert learners_due(now=NOON.replace(hour=23)) == []
    with tenant_phase(tenant_b):
        assert {u.email for u in User.objects.filter(pk__in=learners_due(now=NOON))} == {
            "beta-only@example.com"}


def test_a_tracked_link_records_a_digest_click_and_opens_the_item(tenant_a, shelf, mailoutbox):
    learner = member(tenant_a)
    send(tenant_a, learner, NOON)
    link = links_in(mailoutbox[0].body)[0]
    response = host_client("alpha.test").get(link)  # mail clients are not signed in
    assert response.status_code == 302
    opened = next(item for item in shelf if response.url == f"/item/{item.slug}/")
    with scope(tenant=tenant_a):
        click = Event.objects.get(kind="click")
    assert (click.user_id, click.item_id, click.source, click.context) == (
        learner.pk, opened.pk, "digest", {"placement": "digest"})


def test_a_tampered_or_foreign_tracked_link_is_404(tenant_a, tenant_b, shelf, mailoutbox):
    learner = member(tenant_a)
    send(tenant_a, learner, NOON)
    link = links_in(mailoutbox[0].body)[0]
    token = link.split("/")[2]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert host_client("alpha.test").get(f"/r/{tampered}/").status_code == 404
    assert host_client("alpha.test").get("/r/not-a-token/").status_code == 404
    assert host_client("beta.test").get(link).status_code == 404  # the item is not on that storefront
    with scopes_disabled():
        assert not Event.objects.filter(kind="click").exists()


def test_unsubscribe_confirms_on_get_and_one_click_post_turns_the_digest_off(tenant_a, shelf, mailoutbox):
    learner = member(tenant_a)
    send(tenant_a, learner, NOON)
    address = re.search(r"<http://alpha\.test(/[^>]+)>", mailoutbox[0].extra_headers["List-Unsubscribe"]).group(1)

    mail_client = Client(HTTP_HOST="alpha.test", enforce_csrf_checks=True)
    page = mail_client.get(address)
    assert page.status_code == 200
    assert "Stop the emails with new and recommended items" in page.content.decode()
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).digest == "weekly"  # looking changes nothing

    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click", with no session and no CSRF token.
    done = mail_client.post(address, "List-Unsubscribe=One-Click",
                            content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).digest == "off"
    assert send(tenant_a, learner, NOON + timedelta(days=30)) is False
    assert len(mailoutbox) == 1


def test_an_unsubscribe_link_of_another_storefront_or_forged_is_400(tenant_a, tenant_b, shelf):
    learner = member(tenant_a)
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_b, user=learner, role=Role.LEARNER)
    beta_token = unsubscribe_token(user=learner, tenant=tenant_b)
    client = Client(HTTP_HOST="alpha.test", enforce_csrf_checks=True)
    assert client.post(f"/recommendations/unsubscribe/{beta_token}/").status_code == 400
    assert client.get(f"/recommendations/unsubscribe/{beta_token}/").status_code == 400
    forged = client.get("/recommendations/unsubscribe/forged/")
    assert forged.status_code == 400
    page = forged.content.decode()  # the storefront's own page, with the way home, not a bare line of text
    assert "This unsubscribe link is not valid." in page and "Back to the home page" in page and "<header" in page
    assert client.post("/recommendations/unsubscribe/forged/").status_code == 400
    alpha_token = unsubscribe_token(user=learner, tenant=tenant_a)
    assert client.post(f"/recommendations/unsubscribe/{alpha_token[:-3]}xyz/").status_code == 400
    with scopes_disabled():
        assert not LearnerPreference.objects.filter(digest="off").exists()
    # On its own storefront the same link works, and only there.
    beta = Client(HTTP_HOST="beta.test", enforce_csrf_checks=True)
    assert beta.post(f"/recommendations/unsubscribe/{beta_token}/").status_code == 200
    with scopes_disabled():
        assert list(LearnerPreference.objects.filter(digest="off").values_list("tenant_id", "user_id")) == [
            (tenant_b.pk, learner.pk)]


def test_the_settings_page_saves_personalisation_and_digest(tenant_a):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    page = client.get("/recommendations/settings/")
    assert page.status_code == 200
    assert 'name="personalised"' in page.content.decode() and 'name="digest"' in page.content.decode()

    response = client.post("/recommendations/settings/", {"digest": "daily"})  # personalised unticked
    assert response.status_code == 302 and response.url == "/recommendations/settings/"
    assert "Your recommendation settings are saved." in client.get(response.url).content.decode()
    with scope(tenant=tenant_a):
        saved = LearnerPreference.objects.get(user=learner)
        assert (saved.personalised, saved.digest) == (False, "daily")
        assert AuditLog.objects.filter(action="recommender.personalisation_changed", actor=learner).count() == 1

    client.post("/recommendations/settings/", {"personalised": "on", "digest": "off"})
    with scope(tenant=tenant_a):
        saved.refresh_from_db()
        assert (saved.personalised, saved.digest) == (True, "off")


def test_an_invalid_digest_choice_is_shown_next_to_the_field(tenant_a):
    learner = member(tenant_a)
    client = host_client("alpha.test", learner)
    response = client.post("/recommendations/settings/", {"personalised": "on", "digest": "hourly"})
    assert response.status_code == 400
    body = response.content.decode()
    message = "Select a valid choice. hourly is not one of the available choices."
    assert message in body
    assert body.index('id="id_digest"') < body.index(message)
    assert body.index('id="id_personalised"') < body.index('id="id_digest"')
    with scope(tenant=tenant_a):
        assert LearnerPreference.objects.get(user=learner).digest == "weekly"


def test_the_settings_page_needs_a_signed_in_learner(tenant_a):
    response = host_client("alpha.test").get("/recommendations/settings/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_the_hourly_beat_sends_the_due_digests_of_every_storefront(
        tenant_a, tenant_b, shelf, settings, mailoutbox, django_capture_on_commit_callbacks):
    from recommender.tasks import digests_send_all

    settings.RECOMMENDER_QUIET_HOURS = (0, 0)  # never quiet: the task reads the real clock
    assert settings.CELERY_TASK_ALWAYS_EAGER
    catalog_item(tenant_b, title="Beta Course")
    member(tenant_a, email="alpha-learner@example.com")
    preference(tenant_a, member(tenant_a, email="alpha-off@example.com"), digest="off")
    beta_learner = member(tenant_b, email="beta-learner@example.com")
    asleep = TenantFactory(slug="asleep", is_active=False)
    catalog_item(asleep, title="Asleep Course")
    member(asleep, email="asleep-learner@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        assert digests_send_all.delay().get() == 2  # the two active storefronts
    assert sorted(m.to[0] for m in mailoutbox) == ["alpha-learner@example.com", "beta-learner@example.com"]
    beta_mail = next(m for m in mailoutbox if m.to == ["beta-learner@example.com"])
    assert "Beta Course" in beta_mail.body and "Spreadsheets" not in beta_mail.body
    assert "http://beta.test/r/" in beta_mail.body

    # The next hour's beat finds nobody due.
    with django_capture_on_commit_callbacks(execute=True):
        digests_send_all.delay()
    assert len(mailoutbox) == 2
    with scope(tenant=tenant_b):
        assert LearnerPreference.objects.get(user=beta_learner).last_digest_at is not None


def erase_or_deactivate(tenant, learner, how: str) -> None:
    from accounts.privacy import user_erase
    from accounts.services import membership_remove

    if how == "erased":
        with tenant_phase(tenant):
            user_erase(user=learner)
    elif how == "left":  # the team removed them from the storefront
        with tenant_phase(tenant):
            membership_remove(tenant=tenant, memberships=list(Membership.objects.filter(user=learner)), actor=None)
    else:  # the operator switched the account off
        User.objects.filter(pk=learner.pk).update(is_active=False)


@pytest.mark.parametrize("how", ["erased", "deactivated", "left"])
def test_old_digest_links_write_nothing_about_an_erased_or_deactivated_learner(tenant_a, shelf, mailoutbox, how):
    """A digest's links stay valid for weeks, and carry the learner's id. After the learner erased their account
    (or it was switched off, or they left the storefront), a click on one still opens the item, but records no
    behaviour about them; the one-click unsubscribe answers that they are unsubscribed (nothing will be sent to
    them) and writes nothing."""
    learner = member(tenant_a)
    assert send(tenant_a, learner, NOON)
    message = mailoutbox[0]
    track = links_in(message.body)[0]
    unsubscribe = re.search(r"<http://alpha\.test(/[^>]+)>", message.extra_headers["List-Unsubscribe"]).group(1)
    with scopes_disabled():
        preferences_before = list(LearnerPreference.objects.filter(user=learner).values("digest", "last_digest_at"))
    erase_or_deactivate(tenant_a, learner, how)

    response = host_client("alpha.test").get(track)
    assert response.status_code == 302 and response.url.startswith("/item/")
    mail_client = Client(HTTP_HOST="alpha.test", enforce_csrf_checks=True)
    done = mail_client.post(unsubscribe, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    with scopes_disabled():
        assert not Event.objects.filter(user=learner).exists()
        assert list(LearnerPreference.objects.filter(user=learner).values("digest", "last_digest_at")) == (
            [] if how == "erased" else preferences_before)


@pytest.mark.parametrize("how", ["erased", "deactivated", "left"])
def test_a_queued_digest_sends_nothing_to_a_learner_who_is_gone_since_the_beat(
        tenant_a, shelf, settings, mailoutbox, django_capture_on_commit_callbacks, how):
    """The beat queues one task per due learner; by the time a task runs, the learner may have erased their
    account, been switched off, or left the storefront. The task must then send nothing (an erased account's
    address is a pseudonym) and keep no digest preference about them."""
    from accounts.services import membership_remove
    from recommender.tasks import digest_send as digest_task

    settings.RECOMMENDER_QUIET_HOURS = (0, 0)  # never quiet: the task reads the real clock
    learner = member(tenant_a)
    with tenant_phase(tenant_a):
        assert learners_due() == [learner.pk]
    if how == "left":
        with tenant_phase(tenant_a):
            membership_remove(tenant=tenant_a, memberships=list(Membership.objects.filter(user=learner)), actor=None)
    else:
        erase_or_deactivate(tenant_a, learner, how)

    with django_capture_on_commit_callbacks(execute=True):
        assert digest_task.delay(tenant_id=tenant_a.pk, user_id=learner.pk).get() is False
    assert mailoutbox == []
    with scopes_disabled():
        assert not LearnerPreference.objects.filter(user=learner).exists()


def test_the_digest_of_a_chinese_storefront_is_marked_as_chinese(tenant_a, mailoutbox):
    """The digest is written in the storefront's language, and its HTML part says so: it is rendered without a
    request, so the language must come from the one active while it renders, or ``<html lang>`` would call the
    Chinese text English to mail clients and screen readers."""
    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    catalog_item(tenant_a, title="数据分析入门", language="zh-hans")
    learner = member(tenant_a)
    assert send(tenant_a, learner, NOON)
    message = mailoutbox[0]
    assert "为你推荐" in message.subject
    (html, _mimetype), = message.alternatives
    assert '<html lang="zh-hans">' in html
