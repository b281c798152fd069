import pytest
from django.db import connection
from django.test import Client

from tests.factories import TenantFactory, UserFactory, enable_totp


def pytest_report_header(config):
    import os

    return [
        f"database: {os.environ.get('DATABASE_URL') or 'sqlite (embedded default)'}",
        f"redis: {os.environ.get('REDIS_URL') or 'none (in-process tasks, local memory cache)'}",
    ]


@pytest.fixture(autouse=True)
def default_language():
    """Each request activates its own language, and Django leaves it active in the thread afterwards: start every
    test from the project's default, as a fresh server thread would."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


def clear_cache() -> None:
    """Empty this test process's cache. On Redis only its own keys go (``cache.clear()`` would flush the whole
    database, the Celery broker's queues of a parallel worker test included)."""
    from django.core.cache import cache

    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    elif hasattr(getattr(cache, "_cache", None), "get_client") and cache.key_prefix:
        # Django's own Redis backend: its clear() is FLUSHDB, which would empty the parallel test workers' caches
        # (a WeChat token between two calls) and queues too. Delete this process's keys only.
        client = cache._cache.get_client(None, write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts from an empty cache: a rolled-back test's tenant id is given again to the next test's
    tenant, which must not inherit the pages cached for the first."""
    clear_cache()


@pytest.fixture
def tenant_a(db):
    return TenantFactory(slug="alpha", name="Alpha Academy", domain="alpha.test")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(slug="beta", name="Beta Institute", domain="beta.test")


def host_client(host: str, user=None) -> Client:
    client = Client(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


def operator_client(**user_kwargs) -> Client:
    """The platform's operator (a superuser with two-factor authentication) on the platform host."""
    user = UserFactory(is_superuser=True, is_staff=True, **user_kwargs)
    enable_totp(user)
    return host_client("localhost", user)


@pytest.fixture
def on_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI always does)")
