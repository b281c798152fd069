"""``/healthz``: database, cache and broker, each with its status and latency; 503 when any is down."""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from kombu import Connection


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_cache() -> str:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)
    return "ok"


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return "in-process"
    with Connection(url, connect_timeout=2, transport_options={"socket_timeout": 2}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    return "ok"


logger = logging.getLogger(__name__)

CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


def health_report() -> tuple[bool, dict]:
    results, healthy = {}, True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            status, error = check(), None
        except Exception as exc:  # any failure of a dependency is a "down", reported, never raised
            # The probe is public: it names the kind of failure; the message (hosts, ports, users) goes to the log.
            logger.warning("healthz: %s is down: %s: %s", name, type(exc).__name__, exc)
            status, error, healthy = "down", type(exc).__name__, False
        entry = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
        if error:
            entry["error"] = error
        results[name] = entry
    return healthy, results


class HealthCheckMiddleware:
    """Answer ``/healthz`` before host resolution, so load balancers can probe by IP."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != "/healthz":
            return self.get_response(request)
        healthy, checks = health_report()
        return JsonResponse({"status": "ok" if healthy else "down", "checks": checks},
                            status=200 if healthy else 503)
