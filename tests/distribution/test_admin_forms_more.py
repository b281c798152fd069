"""The distribution admin with input a later step could not use: refused next to its field when the form is sent,
never a server error afterwards that loses what the team typed."""

from django_scopes import scopes_disabled

from accounts.models import Role
from distribution.models import Channel, DistributionSettings
from tests.conftest import host_client
from tests.factories import member


def test_a_measurement_window_no_date_can_hold_is_refused_next_to_its_field(tenant_a):
    """``day - timedelta(days=window_days)`` overflows for a window of a million days: every allocation (the admin's
    action, the nightly task) would fail from then on. The window is one day to ten years."""
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Feed", kind="feed")
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    for days in ("1000000", "3651", "0"):
        page = client.post("/admin/distribution/distributionsettings/add/", {
            "daily_push_budget": "100", "exploration_floor": "0.05", "window_days": days})
        assert page.status_code == 200 and page.context["adminform"].form.errors["window_days"], days
    with scopes_disabled():
        assert not DistributionSettings.objects.exists()
    assert client.post("/admin/distribution/distributionsettings/add/", {
        "daily_push_budget": "100", "exploration_floor": "0.05", "window_days": "3650"}).status_code == 302
    page = client.post("/admin/distribution/channel/", {"action": "recompute_allocation",
                                                        "_selected_action": [channel.pk]})
    assert page.status_code == 302


def test_changing_a_channels_type_without_the_new_types_credentials_is_refused_next_to_the_fields(tenant_a):
    """A feed becoming a WeChat account needs the account's AppID and AppSecret. Only a new channel's form checked
    them; a change of type failed in the save instead ("Missing credentials"): an error page, what the team typed
    lost, no field marked. Now the form keeps what was typed and marks the missing inputs."""
    with scopes_disabled():
        channel = Channel.objects.create(tenant=tenant_a, name="Our feed", kind="feed")
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    client.raise_request_exception = False
    url = f"/admin/distribution/channel/{channel.pk}/change/"
    page = client.post(url, {"name": "Our WeChat", "kind": "wechat", "is_enabled": "on", "endpoint_url": "",
                             "options": "{}", "cred_appid": "wx1234567890abcdef"})
    assert page.status_code == 200, page.status_code
    form = page.context["adminform"].form
    assert "cred_appid" not in form.errors
    assert form.errors["cred_appsecret"] == ["Required for this type of channel."]
    assert form["name"].value() == "Our WeChat"
    channel.refresh_from_db()
    assert (channel.kind, channel.name) == ("feed", "Our feed")


def test_a_change_that_leaves_stored_credentials_empty_keeps_them(tenant_a):
    """Credentials are write-only: on a change the inputs start empty and an empty one keeps the stored value, so a
    channel with its credentials stored is saved without typing them again."""
    from django_scopes import scope

    from distribution import services

    with scope(tenant=tenant_a):
        channel, _generated = services.channel_save(
            channel=Channel(tenant=tenant_a, name="Our WeChat", kind="wechat"),
            credentials={"appid": "wx1234567890abcdef", "appsecret": "s" * 32}, actor=None)
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    page = client.post(f"/admin/distribution/channel/{channel.pk}/change/", {
        "name": "Renamed", "kind": "wechat", "is_enabled": "on", "endpoint_url": "", "options": "{}"})
    assert page.status_code == 302, page.context["adminform"].form.errors
    channel.refresh_from_db()
    assert channel.name == "Renamed" and channel.credentials_encrypted
