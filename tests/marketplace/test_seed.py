from django.core.management import call_command
from django_scopes import scopes_disabled

from accounts.models import Membership, User
from marketplace import demo
from marketplace.models import Domain, Tenant
from tests.conftest import host_client


def snapshot():
    with scopes_disabled():
        return (Tenant.objects.count(), Domain.objects.count(), User.objects.count(),
                sorted(Membership.objects.values_list("tenant__slug", "user__email", "role")))


def test_seed_demo_is_idempotent_and_builds_branded_storefronts(db, capsys):
    call_command("seed_demo", verbosity=0)
    first = snapshot()
    call_command("seed_demo", verbosity=0)
    assert snapshot() == first
    assert first[0] >= 2
    out = capsys.readouterr().out
    assert demo.DEMO_PASSWORD in out and "http://acme.localhost" in out

    shared = User.objects.get(email=demo.SHARED_LEARNER_EMAIL)
    with scopes_disabled():
        assert Membership.objects.filter(user=shared).count() == len(demo.TENANTS)
    for spec in demo.TENANTS:
        tenant = Tenant.objects.get(slug=spec["slug"])
        assert tenant.logo
        page = host_client(spec["hosts"][0]).get("/")
        assert page.status_code == 200 and tenant.primary_color.encode() in page.content
        owner = User.objects.get(email=f"owner@{spec['slug']}.demo")
        assert owner.check_password(demo.DEMO_PASSWORD)
        assert host_client(spec["hosts"][0], owner).get("/admin/").status_code == 200
