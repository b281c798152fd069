import pytest
from django.core.management import call_command
from django.db import connection, models, transaction
from django.db.utils import DatabaseError
from django.test.utils import isolate_apps
from django_scopes import ScopedManager, scopes_disabled
from django_scopes.exceptions import ScopeError

from accounts.models import Membership, Role
from marketplace import tenancy
from marketplace.models import Domain, Tenant, TenantOwned
from tests.conftest import host_client
from tests.factories import MembershipFactory


class TestHostResolution:
    def test_primary_domain_serves_its_tenant(self, tenant_a, tenant_b):
        response = host_client("alpha.test").get("/")
        assert response.status_code == 200
        assert response.context["tenant"] == tenant_a
        assert b"Alpha Academy" in response.content
        assert b"Beta Institute" not in response.content

    def test_alias_domain_serves_the_same_tenant(self, tenant_a):
        Domain.objects.create(tenant=tenant_a, host="learn.alpha.example", is_primary=False)
        response = host_client("learn.alpha.example").get("/")
        assert response.status_code == 200
        assert response.context["tenant"] == tenant_a

    def test_port_and_case_do_not_matter(self, tenant_a):
        response = host_client("ALPHA.test:8443").get("/")
        assert response.context["tenant"] == tenant_a

    def test_slug_dot_localhost_needs_no_dns_setup(self, tenant_b):
        response = host_client("beta.localhost:8000").get("/")
        assert response.status_code == 200
        assert response.context["tenant"] == tenant_b

    @pytest.mark.parametrize("host", ["unknown.test", "nobody.localhost", "alpha.test.evil.com", "a.b.localhost"])
    def test_unknown_host_is_a_clear_404_that_leaks_nothing(self, tenant_a, tenant_b, host):
        response = host_client(host).get("/")
        assert response.status_code == 404
        assert b"No such storefront" in response.content
        assert b"Alpha Academy" not in response.content and b"Beta Institute" not in response.content

    def test_unknown_host_404_also_for_deep_paths_and_admin(self, tenant_a):
        for path in ("/admin/", "/accounts/login/", "/account/privacy/"):
            assert host_client("ghost.test").get(path).status_code == 404

    def test_deactivated_tenant_is_not_served(self, tenant_a):
        Tenant.objects.filter(pk=tenant_a.pk).update(is_active=False)
        assert host_client("alpha.test").get("/").status_code == 404

    def test_platform_host_lists_storefronts(self, tenant_a, tenant_b):
        response = host_client("localhost").get("/")
        assert response.status_code == 200
        assert response.context["tenant"] is None
        assert b"Alpha Academy" in response.content and b"Beta Institute" in response.content


class TestScoping:
    def test_query_outside_a_scope_raises(self, tenant_a):
        MembershipFactory(tenant=tenant_a)
        with pytest.raises(ScopeError):
            list(Membership.objects.all())
        with pytest.raises(ScopeError):
            Membership.objects.filter(role=Role.LEARNER).count()

    def test_scope_shows_only_its_tenant(self, tenant_a, tenant_b):
        mine = MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)
        with transaction.atomic(), tenancy.activate(tenant_a):
            assert list(Membership.objects.all()) == [mine]
            assert not Membership.objects.filter(tenant=tenant_b).exists()

    def test_task_base_class_opens_the_scope_of_its_tenant_id(self, tenant_a, tenant_b):
        from marketplace.celery import app

        mine = MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)

        @app.task(base=tenancy.TenantTask, name="tests.count_members")
        def count_members(*, tenant_id):
            return [m.pk for m in Membership.objects.all()], tenancy.current_tenant().pk

        assert count_members.apply(kwargs={"tenant_id": tenant_a.pk}).get() == ([mine.pk], tenant_a.pk)
        with pytest.raises(TypeError):
            count_members.apply(kwargs={}).get()

    def test_command_wrapper_runs_once_per_tenant_in_its_scope(self, tenant_a, tenant_b, capsys):
        MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)
        MembershipFactory(tenant=tenant_b)

        class Count(tenancy.TenantCommand):
            def handle_tenant(self, tenant, **options):
                self.stdout.write(f"{tenant.slug}={Membership.objects.count()}")

        call_command(Count(), tenant_slugs=None)
        assert capsys.readouterr().out.split() == ["alpha=1", "beta=2"]
        call_command(Count(), tenant_slugs=["beta"])
        assert capsys.readouterr().out.split() == ["beta=2"]

    def test_command_wrapper_rejects_unknown_tenant(self, tenant_a):
        from django.core.management import CommandError

        class Noop(tenancy.TenantCommand):
            def handle_tenant(self, tenant, **options):
                raise AssertionError("must not run")

        with pytest.raises(CommandError, match="nope"):
            call_command(Noop(), tenant_slugs=["nope"])


class TestEveryTenantModelIsScoped:
    def test_installed_models_all_have_the_scoped_manager(self):
        assert tenancy.models_missing_scope() == []
        assert Membership in tenancy.tenant_owned_models()
        assert Domain not in tenancy.tenant_owned_models()

    @isolate_apps("marketplace")
    def test_walk_catches_a_model_without_it(self):
        class Leaky(models.Model):
            tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
            objects = models.Manager()

            class Meta:
                app_label = "marketplace"

        class Careful(models.Model):
            tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
            objects = ScopedManager(tenant="tenant")

            class Meta:
                app_label = "marketplace"

        class SneakySecondManager(TenantOwned):
            everything = models.Manager()

            class Meta:
                app_label = "marketplace"

        class Unrelated(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "marketplace"

        found = tenancy.models_missing_scope([Leaky, Careful, SneakySecondManager, Unrelated])
        assert found == [Leaky, SneakySecondManager]

    def test_system_check_passes_for_the_project(self):
        call_command("check", "--fail-level", "ERROR")


@pytest.mark.usefixtures("on_postgres")
class TestRowLevelSecurity:
    """The database's own wall: a raw query under tenant A's scope cannot see tenant B's rows."""

    def _as_app_role(self, cursor):
        from django.conf import settings

        cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(settings.DATABASE_RLS_ROLE)}")

    def test_lookups_of_which_storefront_holds_something_see_past_the_one_serving_the_request(self, tenant_a,
                                                                                               tenant_b):
        """A refund's webhook names only the charge, and a person's export must reach every storefront holding their
        rows: both ask the platform scope, which the policies let through, from inside another storefront's."""
        from django_scopes import scope

        from accounts.selectors import tenants_holding_user_data
        from payments import services
        from payments.models import Payment
        from payments.providers import ProviderEvent
        from tests.factories import catalog_item, member

        learner = member(tenant_a)
        MembershipFactory(tenant=tenant_b, user=learner)
        item = catalog_item(tenant_a, title="Course", price=1000)
        with scope(tenant=tenant_a):
            started = services.checkout_start(tenant=tenant_a, user=learner, idempotency_key="k", item=item)
            Payment.objects.filter(pk=started.payment.pk).update(provider_charge_ref="pi_alpha")
        event = ProviderEvent(id="evt_1", type="refund.succeeded", payment_ref="", charge_ref="pi_alpha")
        with tenancy.activate(tenant_b), connection.cursor() as cursor:
            self._as_app_role(cursor)
            cursor.execute("SELECT count(*) FROM payments_payment")
            assert cursor.fetchone()[0] == 0  # the wall stands for everything else
            assert services.webhook_storefront(provider_name="sandbox", event=event) == "alpha"
            assert [t.slug for t in tenants_holding_user_data(user=learner)] == ["alpha", "beta"]
            cursor.execute("SELECT count(*) FROM payments_payment")
            assert cursor.fetchone()[0] == 0  # and is back after the lookups

    def test_raw_sql_under_tenant_a_cannot_read_tenant_b(self, tenant_a, tenant_b):
        MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)
        MembershipFactory(tenant=tenant_b)
        with tenancy.activate(tenant_a), connection.cursor() as cursor:
            self._as_app_role(cursor)
            cursor.execute("SELECT tenant_id FROM accounts_membership")
            assert {row[0] for row in cursor.fetchall()} == {tenant_a.pk}
            cursor.execute("SELECT count(*) FROM accounts_membership WHERE tenant_id = %s", [tenant_b.pk])
            assert cursor.fetchone()[0] == 0

    def test_no_scope_means_no_rows(self, tenant_a):
        MembershipFactory(tenant=tenant_a)
        with transaction.atomic(), connection.cursor() as cursor:
            self._as_app_role(cursor)
            cursor.execute("SELECT count(*) FROM accounts_membership")
            assert cursor.fetchone()[0] == 0

    def test_writing_into_another_tenant_is_refused(self, tenant_a, tenant_b):
        user = MembershipFactory(tenant=tenant_a).user
        with pytest.raises(DatabaseError, match="row-level security"), tenancy.activate(tenant_a), \
                connection.cursor() as cursor:
            self._as_app_role(cursor)
            cursor.execute(
                "INSERT INTO accounts_membership (tenant_id, user_id, role, created_at) "
                "VALUES (%s, %s, 'owner', now())", [tenant_b.pk, user.pk])

    def test_nested_scope_restores_the_outer_tenant(self, tenant_a, tenant_b):
        MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)
        with tenancy.activate(tenant_a), connection.cursor() as cursor:
            self._as_app_role(cursor)
            for _ in tenancy.each_tenant([tenant_b]):
                cursor.execute("SELECT DISTINCT tenant_id FROM accounts_membership")
                assert [r[0] for r in cursor.fetchall()] == [tenant_b.pk]
            cursor.execute("SELECT DISTINCT tenant_id FROM accounts_membership")
            assert [r[0] for r in cursor.fetchall()] == [tenant_a.pk]

    def test_every_tenant_table_has_a_policy(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'")
            with_policy = {row[0] for row in cursor.fetchall()}
        with scopes_disabled():
            expected = {m._meta.db_table for m in tenancy.tenant_owned_models()}
        assert expected <= with_policy
