"""The test suite: real PostgreSQL and Redis when DATABASE_URL / REDIS_URL point at them, else the embedded default."""

import os
import uuid

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = "test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
DEBUG = False
PLATFORM_HOSTS = ["localhost", "127.0.0.1", "testserver"]
TENANT_DEV_HOST_SUFFIX = ".localhost"
SITE_SCHEME = "http"
# Argon2 stays first in base; the suite hashes quickly.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=None)  # a worker under test writes its mail here
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "private": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# The suite empties its database between tests with TRUNCATE, which the ledger's guard refuses to anyone else
# (payments migration 0023).
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c zhiku.ledger_truncate=allowed"  # noqa: F405

# On SQLite, a file rather than the in-memory database: in memory, SQLite's shared cache refuses another connection's
# write at once ("database table is locked") instead of waiting for it as ``timeout`` says, and the live-server tests
# make overlapping requests (a page's media and captions) whose transactions take the write lock when they begin.
# One file per process (pytest-django adds each parallel worker's suffix); the test runner deletes it at the end.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"zhiku-test-{os.getpid()}-{uuid.uuid4().hex[:8]}.sqlite3")}

# Parallel workers (pytest-xdist) and successive runs share one Redis: keep their keys apart, so that, for
# example, allauth's rate limits from the last run do not hold back this run's emails.
if REDIS_URL:  # noqa: F405
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    CACHES["default"]["KEY_PREFIX"] = f"test-{_worker}-{uuid.uuid4().hex[:8]}"  # noqa: F405
# Tests about workers start a real worker against Redis themselves; everything else runs tasks in-process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_RESULT_BACKEND = None if CELERY_TASK_ALWAYS_EAGER else CELERY_RESULT_BACKEND  # noqa: F405
# The suite's stand-in platforms and receivers listen on 127.0.0.1.
DISTRIBUTION_ALLOWED_NETWORKS = env.list("DISTRIBUTION_ALLOWED_NETWORKS", default=["127.0.0.0/8"])
CHANNEL_CREDENTIAL_KEYS = ["XR1GSou5V8VYmWErtnPYpw1MHoEmRsdrlk8IwKA40ak="]
