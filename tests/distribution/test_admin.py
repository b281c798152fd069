"""The distribution admin: channel list figures, field-level errors, the delivery log, and storefronts kept apart
(also in the operator's admin on the platform host, where every storefront's rows are visible)."""

from datetime import timedelta

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog import services as catalog
from distribution import services
from distribution.models import (
    Allocation,
    Channel,
    ChannelClick,
    Delivery,
    DistributionSettings,
    Publication,
    PushSchedule,
)
from marketplace.models import AuditLog
from tests.conftest import host_client, operator_client
from tests.distribution.test_pipeline import SECRET, make_channel
from tests.factories import UserFactory, catalog_item, member
from tests.support.webhook_receiver import WebhookReceiver


def test_channel_list_shows_share_budget_and_parked_count(tenant_a, tenant_b):
    item = catalog_item(tenant_a, title="Pushed")
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Partner hook", kind="webhook",
                                         endpoint_url="https://partner.example/hook")
        Allocation.objects.create(tenant=tenant_a, channel=channel, day=timezone.localdate(), interest=0.5,
                                  exposure=10, share=0.25, budget=12)
        parked = Delivery.objects.create(tenant=tenant_a, channel=channel, item=item, version=1, action="publish",
                                         status="parked", due_at=timezone.now(), message="Receiver refused it")
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    listing = client.get("/admin/distribution/channel/").content.decode()
    assert "Partner hook" in listing and "25.0% · 12 a day" in listing
    assert 'class="field-parked">1<' in listing
    log = client.get(f"/admin/distribution/delivery/{parked.pk}/change/").content.decode()
    assert "Receiver refused it" in log
    beta = host_client("beta.test", member(tenant_b, Role.OWNER, mfa=True))
    assert beta.get(f"/admin/distribution/delivery/{parked.pk}/change/").status_code == 404
    assert "Partner hook" not in beta.get("/admin/distribution/channel/").content.decode()


def test_a_private_endpoint_is_refused_next_to_its_field(tenant_a, settings):
    settings.DISTRIBUTION_ALLOWED_NETWORKS = []
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post("/admin/distribution/channel/add/", {
        "name": "Sneaky", "kind": "webhook", "is_enabled": "on", "endpoint_url": "http://10.0.0.5/hook",
        "options": "{}"})
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert "private" in errors["endpoint_url"][0]
    with scopes_disabled():
        assert not Channel.objects.exists()


def test_adding_a_channel_encrypts_a_generated_secret_and_editing_keeps_it(tenant_a):
    from distribution.credentials import decrypt

    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    form = {"name": "Hook", "kind": "webhook", "is_enabled": "on", "endpoint_url": "http://127.0.0.1:9/hook",
            "options": "{}", "content_kinds": ["article"]}
    page = client.post("/admin/distribution/channel/add/", form, follow=True)
    with scopes_disabled():
        channel = Channel.objects.get(tenant=tenant_a)
    secret = decrypt(channel.credentials_encrypted)["signing_secret"]
    assert secret.startswith("whsec_") and secret in page.content.decode()  # shown once, at creation
    assert channel.content_kinds == ["article"]
    edit = client.get(f"/admin/distribution/channel/{channel.pk}/change/").content.decode()
    assert secret not in edit and secret[-4:] in edit
    client.post(f"/admin/distribution/channel/{channel.pk}/change/", {**form, "name": "Hook 2"})
    channel.refresh_from_db()
    assert channel.name == "Hook 2" and decrypt(channel.credentials_encrypted)["signing_secret"] == secret


def test_an_endpoint_typed_without_its_scheme_is_taken_as_https(tenant_a):
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    client.post("/admin/distribution/channel/add/", {
        "name": "Hook", "kind": "webhook", "is_enabled": "on", "endpoint_url": "127.0.0.1:9/hook", "options": "{}"})
    with scopes_disabled():
        assert Channel.objects.get(tenant=tenant_a).endpoint_url == "https://127.0.0.1:9/hook"


def test_a_malformed_signing_secret_is_refused_next_to_its_field(tenant_a):
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post("/admin/distribution/channel/add/", {
        "name": "Hook", "kind": "webhook", "is_enabled": "on", "endpoint_url": "http://127.0.0.1:9/hook",
        "options": "{}", "cred_signing_secret": "whsec_not-base64!"})
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert "base64" in errors["cred_signing_secret"][0]
    with scopes_disabled():
        assert not Channel.objects.exists()


def test_test_connection_reports_an_answer_that_cannot_be_decoded(tenant_a):
    with WebhookReceiver(SECRET) as receiver:
        channel = make_channel(tenant_a, receiver.url)
        receiver.script = [(200, {"Content-Encoding": "gzip"})]  # a JSON body that says it is gzip
        client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
        page = client.post("/admin/distribution/channel/", {"action": "test_connection",
                                                            "_selected_action": [channel.pk]}, follow=True)
    assert page.status_code == 200
    channel.refresh_from_db()
    assert channel.verified_at is None and "could not be read (ContentDecodingError)" in channel.verify_message
    assert any(channel.verify_message in str(m) for m in page.context["messages"])


def test_an_exploration_share_outside_zero_to_one_is_refused_next_to_its_field(tenant_a):
    with scopes_disabled():
        measured = Channel.objects.create(tenant=tenant_a, name="Measured", kind="feed")
        Channel.objects.create(tenant=tenant_a, name="New", kind="feed")
        ChannelClick.objects.create(tenant=tenant_a, channel=measured, visitor="v1")
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    for share in ("-0.5", "1.5"):
        page = client.post("/admin/distribution/distributionsettings/add/", {
            "daily_push_budget": "100", "exploration_floor": share, "window_days": "28"})
        assert page.status_code == 200 and page.context["adminform"].form.errors["exploration_floor"]
    with scopes_disabled():
        assert not DistributionSettings.objects.exists()
    page = client.post("/admin/distribution/channel/", {"action": "recompute_allocation",
                                                        "_selected_action": [measured.pk]})
    assert page.status_code == 302


# --- the operator's admin on the platform host, where every storefront's rows are visible --------------------------

def operator():
    return operator_client(email="op@zhiku.test")


def test_an_item_approved_in_the_operators_admin_goes_only_to_its_own_storefronts_channels(tenant_a, tenant_b):
    with scopes_disabled():
        ours = Channel.objects.create(tenant=tenant_a, name="Alpha feed", kind="feed")
        Channel.objects.create(tenant=tenant_b, name="Beta feed", kind="feed")
    item = catalog_item(tenant_a, title="Alpha's draft", published=False)
    with scope(tenant=tenant_a):
        catalog.item_submit(item=item, actor=UserFactory(email="w@alpha.test"))
    operator().post(f"/admin/catalog/contentitem/{item.pk}/workflow/approve/")
    with scopes_disabled():
        item.refresh_from_db()
        planned = list(Delivery.objects.filter(item=item).values_list("channel_id", flat=True))
    assert item.status == "published" and planned == [ours.pk]


def test_push_every_published_item_in_the_operators_admin_pushes_only_the_channels_storefront(tenant_a, tenant_b):
    alpha = catalog_item(tenant_a, title="Alpha's article")
    catalog_item(tenant_b, title="Beta's paid course", price=9900)
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Alpha feed", kind="feed")
    operator().post("/admin/distribution/channel/", {"action": "push_published_items",
                                                     "_selected_action": [channel.pk]})
    with scopes_disabled():
        assert list(Delivery.objects.filter(channel=channel).values_list("item_id", flat=True)) == [alpha.pk]


def test_recomputing_the_allocation_in_the_operators_admin_touches_only_the_channels_storefront(tenant_a, tenant_b):
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Alpha feed", kind="feed")
        theirs = Channel.objects.create(tenant=tenant_b, name="Beta feed", kind="feed")
        kept = Allocation.objects.create(tenant=tenant_b, channel=theirs, day=timezone.localdate(), interest=0.5,
                                         exposure=10, share=1.0)
    page = operator().post("/admin/distribution/channel/", {"action": "recompute_allocation",
                                                            "_selected_action": [channel.pk]}, follow=True)
    assert page.status_code == 200
    with scopes_disabled():
        assert list(Allocation.objects.filter(tenant=tenant_a).values_list("channel_id", flat=True)) == [channel.pk]
        assert Allocation.objects.filter(pk=kept.pk).exists()


# --- scheduled pushes, target settings, the delivery log's actions ---------------------------------------------------

def test_a_push_schedule_is_added_and_its_time_changed_but_not_its_item(tenant_a):
    first = catalog_item(tenant_a, title="First", published=False)
    second = catalog_item(tenant_a, title="Second", published=False)
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    tomorrow, later = timezone.localtime() + timedelta(days=1), timezone.localtime() + timedelta(days=2)
    page = client.post("/admin/distribution/pushschedule/add/", {
        "item": first.pk, "push_at_0": tomorrow.strftime("%Y-%m-%d"), "push_at_1": tomorrow.strftime("%H:%M:%S")})
    assert page.status_code == 302
    with scopes_disabled():
        schedule = PushSchedule.objects.get()
    edit = client.get(f"/admin/distribution/pushschedule/{schedule.pk}/change/")
    assert 'name="item"' not in edit.content.decode()  # shown, not editable: a schedule belongs to its item
    page = client.post(f"/admin/distribution/pushschedule/{schedule.pk}/change/", {
        "item": second.pk, "push_at_0": later.strftime("%Y-%m-%d"), "push_at_1": later.strftime("%H:%M:%S")})
    assert page.status_code == 302
    with scopes_disabled():
        [(item_id, push_at)] = PushSchedule.objects.values_list("item_id", "push_at")
    assert item_id == first.pk and push_at.date() == later.date()


def test_deleting_schedules_from_the_list_releases_their_pushes(tenant_a):
    with scopes_disabled():
        Channel.objects.create(tenant=tenant_a, name="Alpha feed", kind="feed")
    item = catalog_item(tenant_a, title="Later", published=False)
    staff = UserFactory(email="editor@alpha.test")
    with scope(tenant=tenant_a):
        services.push_schedule_set(item=item, push_at=timezone.now() + timedelta(days=3), actor=None)
        catalog.item_submit(item=item, actor=staff)
        catalog.item_approve(item=item, actor=staff)
    with scopes_disabled():
        schedule = PushSchedule.objects.get()
        assert Delivery.objects.get(item=item).status == "scheduled"
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post("/admin/distribution/pushschedule/", {
        "action": "delete_selected", "_selected_action": [schedule.pk], "post": "yes"})
    assert page.status_code == 302
    with scopes_disabled():
        assert not PushSchedule.objects.exists()
        delivery = Delivery.objects.get(item=item)
    assert delivery.status == "queued" and delivery.due_at <= timezone.now()


def test_target_settings_that_are_not_a_json_object_are_refused_next_to_their_field(tenant_a):
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    form = {"name": "WeChat", "kind": "wechat", "is_enabled": "on", "cred_appid": "wx1", "cred_appsecret": "s"}
    page = client.post("/admin/distribution/channel/add/", {**form, "options": '["author", "Ann"]'})
    assert page.status_code == 200
    assert "JSON object" in page.context["adminform"].form.errors["options"][0]
    with scopes_disabled():
        assert not Channel.objects.exists()
    assert client.post("/admin/distribution/channel/add/", {**form, "options": '{"author": "Ann"}'}).status_code == 302
    with scopes_disabled():
        assert Channel.objects.get().options == {"author": "Ann"}


def test_mark_as_published_keeps_a_long_share_link_and_refuses_one_too_long(tenant_a):
    from distribution.pipeline import delivery_run

    with scopes_disabled():
        Channel.objects.create(tenant=tenant_a, name="Zhihu", kind="zhihu")
    catalog_item(tenant_a, title="By hand")
    with scopes_disabled():
        [delivery] = Delivery.objects.filter(tenant=tenant_a)
    assert delivery_run(tenant=tenant_a, delivery_id=delivery.pk) == "manual"
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    done = f"/admin/distribution/delivery/{delivery.pk}/done/"
    article = "https://zhuanlan.zhihu.com/p/712345678901"
    page = client.post(done, {"external_url": article + "?share_code=" + "a" * 500})
    assert page.status_code == 200 and page.context["form"].errors["external_url"]
    # A share link as Zhihu's app copies it: the article's address and tracking parameters, longer than an id.
    share = (article + "?utm_psn=" + "1" * 19 + "&utm_source=wechat_timeline&utm_medium=social&utm_oi=" + "2" * 40
             + "&utm_content=group3_article&utm_campaign=shareopn&s_r=0&share_code=" + "a" * 40)
    assert 200 < len(share) <= 500
    assert client.post(done, {"external_url": share}).status_code == 302
    with scopes_disabled():
        publication = Publication.objects.get(item=delivery.item)
    assert (publication.status, publication.external_url, publication.external_id) == ("live", share, article)


def test_a_replay_that_would_undo_a_later_delivery_is_refused_with_the_reason(tenant_a):
    item = catalog_item(tenant_a, title="Archived")
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Partner hook", kind="webhook",
                                         endpoint_url="https://partner.example/hook")
        now = timezone.now()
        published = Delivery.objects.create(tenant=tenant_a, channel=channel, item=item, version=1, action="publish",
                                            status="delivered", due_at=now, finished_at=now)
        Delivery.objects.create(tenant=tenant_a, channel=channel, item=item, version=1, action="withdraw",
                                status="delivered", due_at=now, finished_at=now)
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post("/admin/distribution/delivery/", {"action": "replay", "_selected_action": [published.pk]},
                       follow=True)
    shown = [str(m) for m in page.context["messages"]]
    assert any("replaying this one would undo it" in m for m in shown) and not any("Replayed" in m for m in shown)
    published.refresh_from_db()
    assert published.status == "delivered"


def test_deleting_channels_in_the_admin_goes_through_the_service(tenant_a):
    """On its page or from the list, a channel is deleted by ``channel_delete`` (which locks its deliveries the way a
    worker does, and records who deleted it)."""
    with WebhookReceiver(SECRET) as receiver:
        one = make_channel(tenant_a, receiver.url, name="Hook one")
        two = make_channel(tenant_a, receiver.url, name="Hook two")
        three = make_channel(tenant_a, receiver.url, name="Hook three")
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))

    page = client.post(f"/admin/distribution/channel/{one.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    page = client.post("/admin/distribution/channel/", {
        "action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"})
    assert page.status_code == 302

    with scopes_disabled():
        assert not Channel.objects.filter(tenant=tenant_a).exists()
        deleted = set(AuditLog.objects.filter(action="distribution.channel_deleted")
                      .values_list("target_id", flat=True))
    assert deleted == {str(one.pk), str(two.pk), str(three.pk)}
