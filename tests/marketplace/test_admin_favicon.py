"""Admin pages name their (empty) icon, as the storefront's pages do, so browsers do not ask for /favicon.ico, which
no host serves."""

import pytest
from django.urls import reverse

from accounts.models import Role
from tests.conftest import host_client, operator_client
from tests.factories import member

pytestmark = pytest.mark.django_db

ICON = '<link rel="icon" href="data:,">'


def head(response) -> str:
    page = response.content.decode()
    return page[:page.index("</head>")]


def test_the_teams_admin_pages_name_an_empty_icon(tenant_a):
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    for url in (reverse("admin:index"), reverse("admin:payments_order_changelist"),
                reverse("admin:catalog_category_add")):
        response = owner.get(url)
        assert response.status_code == 200
        assert ICON in head(response), url


def test_the_operators_admin_names_an_empty_icon_too(db):
    assert ICON in head(operator_client().get(reverse("admin:index")))
