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


# --- catalog ---------------------------------------------------------------------------------------------------------

def catalog_item(tenant: Tenant, *, title: str = "Item", kind: str = "article", price: int = 0, published: bool = True,
                 creators=(), lessons: int = 0, preview_lessons: int = 0, **fields):
    """A content item, published through the real workflow unless ``published`` is False."""
    from django.utils.text import slugify
    from django_scopes import scope

    from catalog import services
    from catalog.models import ContentItem, ItemCreator, Lesson, Section

    staff = UserFactory(email=f"reviewer@{tenant.slug}.test")
    fields.setdefault("language", "en")
    with scope(tenant=tenant):
        n = ContentItem.objects.count()
        item = ContentItem(tenant=tenant, kind=kind, title=title, price=price,
                           slug=fields.pop("slug", None) or f"{slugify(title, allow_unicode=True)}-{n}", **fields)
        services.item_refresh_derived(item=item, save=False)
        item.save()
        for creator in creators:
            ItemCreator.objects.create(tenant=tenant, item=item, creator=creator, share_bp=5000)
        if lessons:
            section = Section.objects.create(tenant=tenant, item=item, title="Getting started")
            for i in range(lessons):
                Lesson.objects.create(tenant=tenant, item=item, section=section, title=f"Lesson {i + 1}",
                                      kind="text", body=f"Text of lesson {i + 1}", body_html=f"<p>Lesson {i + 1}</p>",
                                      is_preview=i < preview_lessons, position=i)
        services.item_refresh_derived(item=item)
        if published:
            services.item_submit(item=item, actor=staff)
            services.item_approve(item=item, actor=staff)
            item.refresh_from_db()
    return item


def catalog_creator(tenant: Tenant, name: str, user: User | None = None):
    from django.utils.text import slugify

    from catalog.models import Creator

    with scopes_disabled():
        return Creator.objects.create(tenant=tenant, name=name, slug=slugify(name), user=user)


def grant(tenant: Tenant, user: User, **target):
    from django_scopes import scope

    from payments.services import entitlement_grant

    with scope(tenant=tenant):
        return entitlement_grant(tenant=tenant, user=user, actor=None, **target)


def typed_price(item) -> str:
    """An item's price as the team types it in the admin: in the currency's major unit (19.99 for 1999 fen)."""
    from decimal import Decimal

    from marketplace.money import CURRENCY_EXPONENTS

    exponent = CURRENCY_EXPONENTS[item.tenant.currency] if item.tenant_id else 2  # a new item: the tests' yuan
    return f"{Decimal(item.price).scaleb(-exponent):.{exponent}f}"
