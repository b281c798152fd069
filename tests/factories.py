"""Factories rooted in a tenant. Tenant-owned rows are created with scopes disabled (tests only)."""

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import encrypt
from django_scopes import scopes_disabled

from accounts.models import Membership, Role, User
from marketplace.models import Domain, Tenant

TOTP_SECRET = "JBSWY3DPEHPK3PXPTESTSECRETAAAAAA"


class ScopedFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"school{n}")
    name = factory.LazyAttribute(lambda o: f"{o.slug.title()} School")
    default_language = "en"

    @factory.post_generation
    def domain(obj, create, extracted, **kwargs):
        if create:
            Domain.objects.get_or_create(host=extracted or f"{obj.slug}.test",
                                         defaults={"tenant": obj, "is_primary": True})


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            EmailAddress.objects.get_or_create(user=obj, email=obj.email, defaults={"verified": True, "primary": True})


class MembershipFactory(ScopedFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.LEARNER


def enable_totp(user: User) -> Authenticator:
    return Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": encrypt(TOTP_SECRET)})


def member(tenant: Tenant, role: str = Role.LEARNER, *, mfa: bool = False, **user_kwargs) -> User:
    user = UserFactory(**user_kwargs)
    MembershipFactory(tenant=tenant, user=user, role=role)
    if mfa:
        enable_totp(user)
    return user
