import pytest
from django.core import mail
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Invitation, Membership, Role
from accounts.services import invitation_check
from marketplace.errors import ApplicationError
from marketplace.models import AuditLog, Domain, Tenant
from tests.conftest import host_client
from tests.factories import MembershipFactory, UserFactory, enable_totp, member


def membership_change_url(membership):
    return reverse("admin:accounts_membership_change", args=[membership.pk])


class TestMfaGate:
    @pytest.mark.parametrize("role", [Role.OWNER, Role.STAFF])
    def test_owner_and_staff_must_set_up_totp_before_the_admin(self, tenant_a, role):
        user = member(tenant_a, role)
        response = host_client("alpha.test", user).get("/admin/")
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("mfa_activate_totp"))
        enable_totp(user)
        assert host_client("alpha.test", user).get("/admin/").status_code == 200

    def test_operator_must_set_up_totp_too(self, db):
        operator = UserFactory(is_superuser=True, is_staff=True)
        assert host_client("localhost", operator).get("/admin/").status_code == 302
        enable_totp(operator)
        assert host_client("localhost", operator).get("/admin/").status_code == 200

    def test_learner_gets_no_admin(self, tenant_a):
        learner = member(tenant_a, Role.LEARNER, mfa=True)
        response = host_client("alpha.test", learner).get("/admin/", follow=True)
        assert response.status_code == 403
        assert b"no team role" in response.content

    def test_anonymous_admin_login_goes_through_allauth(self, tenant_a):
        response = host_client("alpha.test").get("/admin/", follow=True)
        assert response.redirect_chain[-1][0].startswith(reverse("account_login"))

    def test_staff_of_a_is_nobody_on_b(self, tenant_a, tenant_b):
        staff = member(tenant_a, Role.STAFF, mfa=True)
        assert host_client("beta.test", staff).get("/admin/", follow=True).status_code == 403

    def test_platform_admin_is_for_the_operator_only(self, tenant_a):
        owner = member(tenant_a, Role.OWNER, mfa=True)
        assert host_client("localhost", owner).get("/admin/", follow=True).status_code == 403


class TestCrossTenantAdmin:
    def test_object_of_another_tenant_is_a_404(self, tenant_a, tenant_b):
        staff = member(tenant_a, Role.OWNER, mfa=True)
        theirs = MembershipFactory(tenant=tenant_b)
        ours = MembershipFactory(tenant=tenant_a)
        client = host_client("alpha.test", staff)
        assert client.get(membership_change_url(ours)).status_code == 200
        assert client.get(membership_change_url(theirs)).status_code == 404
        assert client.post(membership_change_url(theirs), {"role": Role.OWNER}).status_code == 404
        assert client.get(reverse("admin:accounts_membership_delete", args=[theirs.pk])).status_code == 404
        with scopes_disabled():
            theirs.refresh_from_db()
        assert theirs.role == Role.LEARNER

    def test_changelists_show_only_this_tenant(self, tenant_a, tenant_b):
        owner = member(tenant_a, Role.OWNER, mfa=True, email="boss@alpha.test")
        member(tenant_b, Role.LEARNER, email="stranger@beta.test")
        client = host_client("alpha.test", owner)
        page = client.get(reverse("admin:accounts_membership_changelist"))
        assert b"boss@alpha.test" in page.content and b"stranger@beta.test" not in page.content
        tenants = client.get(reverse("admin:marketplace_tenant_changelist"))
        assert list(tenants.context["cl"].queryset) == [tenant_a]
        assert client.get(reverse("admin:marketplace_tenant_change", args=[tenant_b.pk])).status_code == 404

    def test_owner_edits_own_branding_only(self, tenant_a):
        owner = member(tenant_a, Role.OWNER, mfa=True)
        client = host_client("alpha.test", owner)
        url = reverse("admin:marketplace_tenant_change", args=[tenant_a.pk])
        response = client.post(url, {"name": "Alpha Academy 2", "primary_color": "nope", "default_language": "en"})
        assert response.status_code == 200
        assert "primary_color" in response.context["adminform"].form.errors
        response = client.post(url, {"name": "Alpha Academy 2", "primary_color": "#123456",
                                     "default_language": "zh-hans", "slug": "hijack"})
        assert response.status_code == 302
        tenant_a.refresh_from_db()
        assert (tenant_a.name, tenant_a.primary_color, tenant_a.slug) == ("Alpha Academy 2", "#123456", "alpha")

    def test_staff_cannot_manage_the_team(self, tenant_a):
        staff = member(tenant_a, Role.STAFF, mfa=True)
        learner = MembershipFactory(tenant=tenant_a)
        response = host_client("alpha.test", staff).post(membership_change_url(learner), {"role": Role.OWNER})
        assert response.status_code == 403
        with scopes_disabled():
            learner.refresh_from_db()
        assert learner.role == Role.LEARNER

    def test_staff_cannot_send_an_invitation_again(self, tenant_a, django_capture_on_commit_callbacks):
        # A fresh link is a new invitation: an expired owner invitation must not come back through a staff member.
        from accounts.services import invitation_create

        with scopes_disabled():
            invitation, _token = invitation_create(tenant=tenant_a, email="new.owner@example.com", role=Role.OWNER,
                                                   invited_by=None)
        changelist = reverse("admin:accounts_invitation_changelist")
        for role, resent in ((Role.STAFF, False), (Role.OWNER, True)):
            client = host_client("alpha.test", member(tenant_a, role, mfa=True))
            assert ('value="resend"' in client.get(changelist).content.decode()) is resent
            with django_capture_on_commit_callbacks(execute=True):
                client.post(changelist, {"action": "resend", "_selected_action": [invitation.pk]})
            before = invitation.token_hash
            with scopes_disabled():
                invitation.refresh_from_db()
            assert (invitation.token_hash != before) is resent
        assert len(mail.outbox) == 1  # the owner's resend

    def test_the_last_owner_cannot_leave_the_storefront_without_one(self, tenant_a):
        owner = member(tenant_a, Role.OWNER, mfa=True)
        client = host_client("alpha.test", owner)
        with scopes_disabled():
            mine = Membership.objects.get(user=owner, tenant=tenant_a)
        response = client.post(membership_change_url(mine), {"role": Role.STAFF})
        assert response.status_code == 200
        assert "A storefront needs an owner: make someone else an owner first." in response.content.decode()
        assert client.get(reverse("admin:accounts_membership_delete", args=[mine.pk])).status_code == 403
        client.post(reverse("admin:accounts_membership_changelist"),
                    {"action": "delete_selected", "_selected_action": [mine.pk], "post": "yes"})
        with scopes_disabled():
            assert Membership.objects.get(pk=mine.pk).role == Role.OWNER

        # With a second owner, either may step down, and the change is in the audit log.
        other = member(tenant_a, Role.OWNER, mfa=True)
        assert client.post(membership_change_url(mine), {"role": Role.STAFF}).status_code == 302
        with scopes_disabled():
            assert Membership.objects.get(pk=mine.pk).role == Role.STAFF
            assert AuditLog.objects.filter(action="membership.role_changed", actor=owner).exists()
            theirs = Membership.objects.get(user=other, tenant=tenant_a)
        response = host_client("alpha.test", other).post(membership_change_url(theirs), {"role": Role.STAFF})
        assert response.status_code == 200 and "needs an owner" in response.content.decode()

    def test_owner_invites_staff_from_the_admin(self, tenant_a, tenant_b, django_capture_on_commit_callbacks):
        owner = member(tenant_a, Role.OWNER, mfa=True)
        with django_capture_on_commit_callbacks(execute=True):
            response = host_client("alpha.test", owner).post(
                reverse("admin:accounts_invitation_add"), {"email": "New.Staff@Example.com", "role": Role.STAFF})
        assert response.status_code == 302
        with scopes_disabled():
            invitation = Invitation.objects.get()
        assert (invitation.tenant, invitation.email, invitation.role) == (tenant_a, "new.staff@example.com", "staff")
        assert len(mail.outbox) == 1 and "http://alpha.test/invitations/" in mail.outbox[0].body


    def test_an_invitation_that_would_change_nothing_is_refused_at_the_address(self, tenant_a, tenant_b):
        owner = member(tenant_a, Role.OWNER, mfa=True)
        staff = member(tenant_a, Role.STAFF, email="kai@alpha.example")
        client = host_client("alpha.test", owner)
        add = reverse("admin:accounts_invitation_add")

        response = client.post(add, {"email": "KAI@alpha.example", "role": Role.STAFF})
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert errors == {"email": ["kai@alpha.example is already staff on this storefront."]}
        # Another role is a change of role, made when it is accepted.
        assert client.post(add, {"email": staff.email, "role": Role.OWNER}).status_code == 302
        assert client.post(add, {"email": "new@alpha.example", "role": Role.CREATOR}).status_code == 302
        again = client.post(add, {"email": "new@alpha.example", "role": Role.CREATOR})
        assert "is waiting to be accepted" in again.context["adminform"].form.errors["email"][0]
        with scopes_disabled():
            assert sorted(Invitation.objects.values_list("email", "role")) == [
                ("kai@alpha.example", "owner"), ("new@alpha.example", "creator")]
            # The same address may be invited by another storefront.
            with pytest.raises(ApplicationError) as refused:
                invitation_check(tenant=tenant_a, email="new@alpha.example", role=Role.CREATOR)
            assert refused.value.code == "invitation_pending"
            invitation_check(tenant=tenant_b, email="new@alpha.example", role=Role.CREATOR)


@pytest.fixture
def operator(db):
    user = UserFactory(email="op@zhiku.test", is_superuser=True, is_staff=True)
    enable_totp(user)
    return user


class TestOnboarding:
    url = "/admin/marketplace/tenant/add/"

    def form(self, **overrides):
        data = {"name": "Gamma 学院", "slug": "gamma", "host": "learn.gamma.example", "primary_color": "#aa3300",
                "default_language": "zh-hans", "currency": "CNY", "platform_fee_bp": 1200,
                "owner_email": "founder@gamma.example"}
        data.update(overrides)
        return data

    def test_operator_onboards_a_tenant_with_domain_branding_and_owner_invitation(
            self, operator, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = host_client("localhost", operator).post(self.url, self.form())
        assert response.status_code == 302
        tenant = Tenant.objects.get(slug="gamma")
        assert (tenant.name, tenant.primary_color, tenant.currency, tenant.platform_fee_bp) == (
            "Gamma 学院", "#aa3300", "CNY", 1200)
        assert Domain.objects.get(tenant=tenant).host == "learn.gamma.example"
        with scopes_disabled():
            invitation = Invitation.objects.get(tenant=tenant)
            assert AuditLog.objects.filter(tenant=tenant, action="tenant.onboarded").exists()
        assert (invitation.role, invitation.email) == (Role.OWNER, "founder@gamma.example")
        assert mail.outbox[0].to == ["founder@gamma.example"]
        assert "http://learn.gamma.example/invitations/" in mail.outbox[0].body

    @pytest.mark.parametrize("field,value", [
        ("host", "alpha.test"),          # already serves another storefront
        ("host", "alpha.localhost"),     # another storefront's development host
        ("host", "localhost"),           # the platform's own hosts: the storefront would be unreachable
        ("host", "127.0.0.1"),
        ("host", "testserver"),
        ("host", "not a host"),
        ("slug", "alpha"),               # taken
        ("slug", "admin"),               # reserved
        ("primary_color", "red"),
        ("currency", "XXX"),
        ("owner_email", "not-an-email"),
    ])
    def test_bad_input_is_shown_next_to_the_field_and_creates_nothing(
            self, operator, tenant_a, field, value, django_capture_on_commit_callbacks):
        before = (Tenant.objects.count(), Domain.objects.count())
        with django_capture_on_commit_callbacks(execute=True):
            response = host_client("localhost", operator).post(self.url, self.form(**{field: value}))
        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert (Tenant.objects.count(), Domain.objects.count()) == before
        with scopes_disabled():
            assert not Invitation.objects.exists()
        assert mail.outbox == []

    def test_no_storefront_host_can_be_a_platform_host_or_another_storefronts(
            self, operator, tenant_a, tenant_b, django_capture_on_commit_callbacks):
        from marketplace.services import domain_add

        for host in ("localhost", "beta.localhost"):
            with pytest.raises(ApplicationError) as refused:
                domain_add(tenant=tenant_a, host=host)
            assert "host" in refused.value.extra["fields"]
        # A storefront's own development host is its to take, also while it is being onboarded.
        assert domain_add(tenant=tenant_a, host="alpha.localhost").host == "alpha.localhost"
        with django_capture_on_commit_callbacks(execute=True):
            response = host_client("localhost", operator).post(self.url, self.form(host="gamma.localhost"))
        assert response.status_code == 302
        assert Domain.objects.get(tenant__slug="gamma").host == "gamma.localhost"

    def test_operator_sees_every_tenant_on_the_platform_host(self, operator, tenant_a, tenant_b):
        MembershipFactory(tenant=tenant_a)
        MembershipFactory(tenant=tenant_b)
        page = host_client("localhost", operator).get(reverse("admin:accounts_membership_changelist"))
        assert page.status_code == 200
        with scopes_disabled():
            assert set(page.context["cl"].queryset) == set(Membership.objects.all())
