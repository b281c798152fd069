"""The distribution admin: channel list figures, field-level errors, the delivery log, and storefronts kept apart
(also in the operator's admin on the platform host, where every storefront's rows are visible)."""

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from accounts.models import Role
from catalog import services as catalog
from distribution.models import Allocation, Channel, Delivery
from tests.conftest import host_client, operator_client
from tests.factories import UserFactory, catalog_item, member


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
