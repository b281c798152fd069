"""Tenant scoping, in one place.

A query on a tenant-owned model runs only inside a scope; outside one, django-scopes raises ScopeError. Scopes open
here and nowhere else:

* ``TenantMiddleware``: host -> Domain -> Tenant for every web and API request;
* ``TenantTask``: the Celery base class, which takes ``tenant_id``;
* ``TenantCommand``: the management-command wrapper (``--tenant SLUG``, default every active tenant);
* ``each_tenant()``: for the few operations keyed by a person rather than a tenant (privacy export and erasure),
  which visit the person's tenants one at a time;
* ``platform_scope()``: the operator's admin on a platform host, for superusers only;
* ``event_scope()``: a payment provider's verified webhook on a platform host, which names its storefront;
* ``tenant_phase()``: one committed step of a long job that must not hold one transaction for its whole run (the
  nightly recommender fit claims its run, reads, computes outside any transaction, then writes).

A tenant's scope also makes its time zone the active one (``Tenant.time_zone``): times typed in its admin are read
in it and its pages and emails show times in it. A platform host stays in UTC (``TIME_ZONE``).

Each scope is also a database transaction. On PostgreSQL it starts with ``set_config(..., is_local => true)``
(``SET LOCAL``), which the row-level-security policies installed by ``install_rls()`` read, so a raw SQL query
under tenant A cannot see tenant B's rows even if the ORM scope were bypassed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery.contrib.django.task import DjangoTask
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import render
from django.utils import timezone, translation
from django_scopes import scope, scopes_disabled

from .models import Domain, Tenant, dev_host_slug

log = logging.getLogger(__name__)

_current_tenant: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)
_db_scope: ContextVar[tuple[str, str] | None] = ContextVar("db_scope", default=None)

# Models with a tenant column that are read before a tenant is known, and so are not scoped.
UNSCOPED_TENANT_MODELS = {"marketplace.Domain": "the host -> tenant routing table"}


def current_tenant() -> Tenant | None:
    """The tenant whose scope is open, or None on a platform host or outside any scope."""
    return _current_tenant.get()


def _set_db_scope(value: tuple[str, str]) -> None:
    if connection.vendor != "postgresql":
        return
    tenant_id, kind = value
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('zhiku.tenant_id', %s, true), set_config('zhiku.scope', %s, true)",
            [tenant_id, kind],
        )


@contextmanager
def _db_transaction_scope(value: tuple[str, str]) -> Iterator[None]:
    previous = _db_scope.get()
    # A scope opened by an on-commit hook of an outer one starts a transaction of its own.
    nested = previous is not None and connection.in_atomic_block
    token = _db_scope.set(value)
    try:
        with transaction.atomic():
            _set_db_scope(value)
            yield
            # A nested scope's SET LOCAL outlives its savepoint: put the outer one back.
            if nested:
                _set_db_scope(previous)
    finally:
        _db_scope.reset(token)


@contextmanager
def activate(tenant: Tenant) -> Iterator[Tenant]:
    """Open ``tenant``'s scope and a transaction carrying it, in its time zone. Private to this module's entry
    points."""
    token = _current_tenant.set(tenant)
    try:
        with (scope(tenant=tenant), timezone.override(tenant.time_zone),
              _db_transaction_scope((str(tenant.pk), "tenant"))):
            yield tenant
    finally:
        _current_tenant.reset(token)


@contextmanager
def platform_scope() -> Iterator[None]:
    """Every tenant's rows at once: the platform operator's admin, and lookups that only find which storefront holds
    something (the storefront of a provider's charge, the storefronts holding a person's data); nothing else."""
    token = _current_tenant.set(None)
    try:
        with scopes_disabled(), _db_transaction_scope(("", "platform")):
            yield
    finally:
        _current_tenant.reset(token)


@contextmanager
def event_scope(slug: str) -> Iterator[Tenant | None]:
    """The scope of the storefront a payment provider's verified event names (None when it names none): one
    webhook endpoint on the platform host serves every storefront of the provider's account. A deactivated
    storefront is included: its money still moves (a checkout paid after it closed, a refund, a chargeback) and is
    booked, where answering "ignored" would stop the provider from ever sending the event again."""
    tenant = Tenant.objects.filter(slug=slug).first() if slug else None
    if tenant is None:
        yield None
        return
    with activate(tenant):
        yield tenant


@contextmanager
def tenant_phase(tenant: Tenant) -> Iterator[Tenant]:
    """One step of a long per-tenant job: the tenant's scope and a transaction that commits when the step ends."""
    with activate(tenant):
        yield tenant


def each_tenant(tenants: Iterable[Tenant]) -> Iterator[Tenant]:
    """Visit tenants one at a time, each inside its own scope (for person-keyed work such as privacy requests)."""
    for tenant in tenants:
        with activate(tenant):
            yield tenant


# What a deactivated storefront still serves: its signed ledger heads, which its payees check their statements against.
CLOSED_STOREFRONT_PATHS = frozenset({"/ledger/heads.json"})


def resolve_tenant(host: str, *, closed_too: bool = False) -> Tenant | None:
    """Map a request host (port stripped, any case) to an active tenant (or, ``closed_too``, a deactivated one), or
    None for an unknown host."""
    host = host.lower().rstrip(".")
    domain = Domain.objects.select_related("tenant").filter(host=host).first()
    if domain is not None:
        return domain.tenant if domain.tenant.is_active or closed_too else None
    slug = dev_host_slug(host)
    found = Tenant.objects.filter(slug=slug).first() if slug is not None else None
    return found if found is not None and (found.is_active or closed_too) else None


def _split_host(request) -> str:
    host = request.get_host()
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host


class TenantMiddleware:
    """Resolve the tenant from the host and run the rest of the request inside its scope.

    Platform hosts (``PLATFORM_HOSTS``) carry no tenant and open no scope; the admin site opens the platform scope
    for superusers there. An unknown host gets the "no such storefront" page with status 404.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = _split_host(request).lower()
        if host in settings.PLATFORM_HOSTS:
            request.tenant = None
            return self.get_response(request)
        tenant = resolve_tenant(host, closed_too=request.path in CLOSED_STOREFRONT_PATHS)
        if tenant is None:
            log.info("no storefront for host %s", host)
            # The locale middleware has not run: speak the visitor's language, not the last one this thread used.
            with translation.override(translation.get_language_from_request(request)):
                return render(request, "no_such_storefront.html", {"host": host}, status=404)
        request.tenant = tenant
        with activate(tenant):
            return self.get_response(request)


class TenantLocaleMiddleware(LocaleMiddleware):
    """The page's language, by one rule: a signed-in person's own (``User.language``, which choosing in the language
    menu keeps), else the one chosen in this browser (the menu's cookie), else the storefront's default (on a
    platform host, the browser's).

    The person is known only after the authentication middleware, which runs after this one: the language is set
    without them first (a page refused before any view, such as a NUL byte's 400, speaks it) and once more before
    the view. Only a request with a session cookie is looked at for a person, so an anonymous page never reads the
    session (and so never varies by cookie) for its language.
    """

    @staticmethod
    def language_for(request, user=None) -> str:
        supported = dict(settings.LANGUAGES)
        for chosen in (getattr(user, "language", ""), request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)):
            if chosen in supported:
                return chosen
        if getattr(request, "tenant", None) is not None:
            return request.tenant.default_language
        return translation.get_language_from_request(request)

    def process_request(self, request):
        translation.activate(self.language_for(request))
        request.LANGUAGE_CODE = translation.get_language()

    def process_view(self, request, view_func, view_args, view_kwargs):
        if settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated:
            translation.activate(self.language_for(request, request.user))
            request.LANGUAGE_CODE = translation.get_language()


def tenant_context(request) -> dict:
    return {"tenant": getattr(request, "tenant", None)}


class TenantTask(DjangoTask):
    """Celery base class for work that belongs to one tenant: call it with ``tenant_id=...``.

    The task body runs inside that tenant's scope, transaction and time zone, exactly as a web request would, and in
    the storefront's language: what it writes for the team to read (a delivery's log) is in the team's language, not
    in the language of whichever request or worker ran it.
    """

    abstract = True

    def __call__(self, *args, tenant_id: int, **kwargs):
        tenant = Tenant.objects.get(pk=tenant_id)
        with activate(tenant), translation.override(tenant.default_language):
            return super().__call__(*args, tenant_id=tenant_id, **kwargs)


class TenantCommand(BaseCommand):
    """Management command run once per tenant, inside its scope.

    Subclasses implement ``handle_tenant(tenant, **options)``; ``before_tenants`` and ``after_tenants`` run
    outside any scope (for global set-up and summaries).
    """

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", dest="tenant_slugs", metavar="SLUG",
                            help="Run for this tenant only (repeatable). Default: every active tenant.")

    def select_tenants(self, slugs: list[str] | None) -> list[Tenant]:
        if not slugs:
            return list(Tenant.objects.filter(is_active=True).order_by("slug"))
        tenants = list(Tenant.objects.filter(slug__in=slugs))
        missing = set(slugs) - {t.slug for t in tenants}
        if missing:
            raise CommandError(f"No tenant with slug: {', '.join(sorted(missing))}")
        return tenants

    def before_tenants(self, **options) -> None:
        """Global work before the per-tenant loop (no scope is open)."""

    def after_tenants(self, **options) -> None:
        """Global work after the per-tenant loop (no scope is open)."""

    def handle_tenant(self, tenant: Tenant, **options) -> None:
        raise NotImplementedError

    def handle(self, *args, **options):
        self.before_tenants(**options)
        for tenant in each_tenant(self.select_tenants(options.get("tenant_slugs"))):
            self.handle_tenant(tenant, **options)
        self.after_tenants(**options)


def _has_tenant_column(model: type[models.Model]) -> bool:
    field = next((f for f in model._meta.concrete_fields if f.name == "tenant"), None)
    return field is not None and field.is_relation and field.related_model is Tenant


def tenant_owned_models(candidates: Iterable[type[models.Model]] | None = None) -> list[type[models.Model]]:
    """Every model with a ``tenant`` foreign key to Tenant, except the routing table."""
    return [
        model for model in (apps.get_models() if candidates is None else candidates)
        if _has_tenant_column(model) and model._meta.label not in UNSCOPED_TENANT_MODELS
    ]


def models_missing_scope(candidates: Iterable[type[models.Model]] | None = None) -> list[type[models.Model]]:
    """Tenant-owned models with any manager that is not a django-scopes ScopedManager."""
    return [
        model for model in tenant_owned_models(candidates)
        if not all(hasattr(manager, "with_scopes_disabled") for manager in model._meta.managers)
    ]


def check_scoped_managers(app_configs=None, **_kwargs):
    """System check (zhiku.E001): a tenant-owned model without the scoped manager would leak across tenants."""
    from django.core.checks import Error

    return [
        Error(f"{model._meta.label} has a tenant column but an unscoped manager.",
              hint='Derive it from marketplace.models.TenantOwned or declare objects = ScopedManager(tenant="tenant").',
              obj=model, id="zhiku.E001")
        for model in models_missing_scope()
    ]


RLS_POLICY = """
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON {table};
CREATE POLICY tenant_isolation ON {table}
    USING (current_setting('zhiku.scope', true) = 'platform'
           OR tenant_id = NULLIF(current_setting('zhiku.tenant_id', true), '')::bigint)
    WITH CHECK (current_setting('zhiku.scope', true) = 'platform'
           OR tenant_id = NULLIF(current_setting('zhiku.tenant_id', true), '')::bigint);
"""


def install_rls(using: str = "default", **_kwargs) -> None:
    """Create the application role and a tenant_isolation policy on every tenant-owned table (idempotent).

    Runs after every ``migrate`` (post_migrate), so tables added by later apps get their policy automatically.
    """
    from django.db import connections

    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    role = conn.ops.quote_name(settings.DATABASE_RLS_ROLE)
    with conn.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{settings.DATABASE_RLS_ROLE}') THEN "
            f"CREATE ROLE {role} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
        )
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for model in tenant_owned_models():
            cursor.execute(RLS_POLICY.format(table=conn.ops.quote_name(model._meta.db_table)))


def set_rls_role(sender, connection, **_kwargs) -> None:
    """connection_created hook: run as the non-owner role so the policies apply (production)."""
    if connection.vendor == "postgresql" and settings.DATABASE_SET_RLS_ROLE:
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {connection.ops.quote_name(settings.DATABASE_RLS_ROLE)}")
