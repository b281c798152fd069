"""On a storefront's admin, the people named on its rows (an order's learner, a refund's author) link to their
membership of that storefront: the user page the links point at is the platform operator's, and the team may see only
what its own storefront holds about a person."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from accounts.models import Membership, Role
from payments.models import Order
from tests.conftest import host_client, operator_client
from tests.factories import UserFactory, catalog_item, member
from tests.payments.test_checkout import buy

pytestmark = pytest.mark.django_db


def user_url(user) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def a_sale(tenant, host: str):
    """A learner's paid order on the storefront: the order and its learner."""
    learner = member(tenant, email=f"reader@{host}")
    buy(host_client(host, learner), f"item={catalog_item(tenant, title='Course', price=9900).slug}")
    with scopes_disabled():
        return Order.objects.get(tenant=tenant, user=learner), learner


@pytest.mark.parametrize("role", [Role.OWNER, Role.STAFF])
def test_the_team_follows_an_orders_learner_to_their_membership_here(tenant_a, role):
    order, learner = a_sale(tenant_a, "alpha.test")
    team = host_client("alpha.test", member(tenant_a, role, mfa=True))
    page = team.get(reverse("admin:payments_order_change", args=[order.pk])).content.decode()
    link = re.search(r'<div class="readonly"><a href="([^"]+)">reader@alpha.test</a>', page).group(1)
    assert link == user_url(learner)

    landed = team.get(link, follow=True)
    with scope(tenant=tenant_a):
        membership = Membership.objects.get(user=learner)
    assert landed.status_code == 200
    assert landed.redirect_chain == [(reverse("admin:accounts_membership_change", args=[membership.pk]), 302)]
    assert "reader@alpha.test" in landed.content.decode()


def test_someone_of_another_storefront_only_is_a_404(tenant_a, tenant_b):
    _order, theirs = a_sale(tenant_b, "beta.test")
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    response = owner.get(user_url(theirs))
    assert response.status_code == 404
    assert "reader@beta.test" not in response.content.decode()
    # Nor does the page say whether an account exists at all.
    assert owner.get(reverse("admin:accounts_user_change", args=[theirs.pk + 1000])).status_code == 404
    assert owner.get(reverse("admin:accounts_user_change", args=["nobody"])).status_code == 404


def test_someone_who_left_this_storefront_is_a_404_here(tenant_a):
    _order, learner = a_sale(tenant_a, "alpha.test")
    with scopes_disabled():
        Membership.objects.filter(tenant=tenant_a, user=learner).delete()
    owner = host_client("alpha.test", member(tenant_a, Role.OWNER, mfa=True))
    assert owner.get(user_url(learner)).status_code == 404


def test_a_creator_who_may_not_see_the_team_is_told_so_for_members_and_strangers_alike(tenant_a, tenant_b):
    _order, learner = a_sale(tenant_a, "alpha.test")
    stranger = UserFactory(email="stranger@beta.test")
    creator = host_client("alpha.test", member(tenant_a, Role.CREATOR))
    assert creator.get(user_url(learner)).status_code == 403
    assert creator.get(user_url(stranger)).status_code == 403


def test_the_operator_still_gets_the_persons_page(tenant_a):
    _order, learner = a_sale(tenant_a, "alpha.test")
    response = operator_client().get(user_url(learner))
    assert response.status_code == 200
    assert response.context["original"] == learner
