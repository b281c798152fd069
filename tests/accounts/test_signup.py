from allauth.account.models import EmailAddress
from django.core import mail
from django_scopes import scopes_disabled

from accounts.models import Membership, Role, User
from accounts.selectors import user_can_buy
from tests.conftest import host_client
from tests.factories import UserFactory

PASSWORD = "a long and unusual passphrase 42"


def test_signing_up_on_a_storefront_makes_a_learner_and_asks_to_verify(tenant_a):
    response = host_client("alpha.test").post("/accounts/signup/", {
        "email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    with scopes_disabled():
        assert Membership.objects.get(user=user).role == Role.LEARNER
    assert user.password.startswith("md5$")  # the test hasher; production's first hasher is argon2
    assert "alpha.test" in mail.outbox[-1].body
    assert not user_can_buy(user=user)
    EmailAddress.objects.filter(user=user).update(verified=True)
    assert user_can_buy(user=user)


def test_signup_errors_are_shown_next_to_fields(tenant_a):
    UserFactory(email="taken@example.com")
    response = host_client("alpha.test").post("/accounts/signup/", {
        "email": "taken@example.com", "password1": PASSWORD, "password2": "different"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "email" in errors or "password2" in errors
    assert User.objects.filter(email="taken@example.com").count() == 1


def test_a_chinese_storefront_says_in_chinese_that_a_password_is_too_short(tenant_a):
    tenant_a.default_language = "zh-hans"
    tenant_a.save(update_fields=["default_language"])
    response = host_client("alpha.test").post("/accounts/signup/", {
        "email": "new@example.com", "password1": "Ab1!x", "password2": "Ab1!x"})
    assert "密码长度太短" in " ".join(response.context["form"].errors["password1"])


def test_one_identity_joins_a_second_storefront_by_signing_in(tenant_a, tenant_b):
    person = UserFactory(email="wanderer@example.com", password=PASSWORD)
    with scopes_disabled():
        Membership.objects.create(tenant=tenant_a, user=person)
    response = host_client("beta.test").post("/accounts/login/", {"login": "wanderer@example.com",
                                                                  "password": PASSWORD})
    assert response.status_code == 302
    with scopes_disabled():
        assert set(Membership.objects.filter(user=person).values_list("tenant__slug", flat=True)) == {"alpha", "beta"}
    assert User.objects.filter(email="wanderer@example.com").count() == 1


def test_no_signup_on_the_platform_host(db):
    host_client("localhost").post("/accounts/signup/", {
        "email": "drifter@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert not User.objects.filter(email="drifter@example.com").exists()


def test_argon2_is_the_first_hasher():
    from marketplace.settings import base

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


LONG_EMAIL = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com"  # 308 characters; the columns hold 254


def test_signing_up_with_an_overlong_address_is_refused_not_cut_to_fit(tenant_a):
    response = host_client("alpha.test").post("/accounts/signup/", {
        "email": LONG_EMAIL, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 200
    assert "at most 254 characters" in " ".join(response.context["form"].errors["email"])
    assert not User.objects.filter(email__startswith="a" * 60 + "@").exists()
    assert not mail.outbox


def test_adding_an_overlong_address_to_an_account_is_a_form_error(tenant_a):
    from tests.factories import member

    client = host_client("alpha.test", member(tenant_a))
    response = client.post("/accounts/email/", {"email": LONG_EMAIL, "action_add": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not EmailAddress.objects.filter(email__startswith="a" * 60 + "@").exists()
