"""A new channel's tracking code is drawn when it is saved: the add page shows none (one it showed would not be the
one saved), and the channel's page shows the code it carries."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from distribution.models import Channel
from tests.conftest import host_client
from tests.factories import member

pytestmark = pytest.mark.django_db


def test_the_tracking_code_is_shown_once_the_channel_is_saved(tenant_a):
    client = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    add = client.get(reverse("admin:distribution_channel_add")).content.decode()
    assert "field-code" not in add
    response = client.post(reverse("admin:distribution_channel_add"), {
        "name": "Hook", "kind": "webhook", "is_enabled": "on", "endpoint_url": "http://127.0.0.1:9/hook",
        "options": "{}"})
    assert response.status_code == 302
    with scopes_disabled():
        channel = Channel.objects.get(tenant=tenant_a)
    page = client.get(reverse("admin:distribution_channel_change", args=[channel.pk])).content.decode()
    shown = re.search(r'field-code.*?<div class="readonly">([a-z0-9]+)</div>', page, re.S).group(1)
    assert shown == channel.code
