"""Settings shared by every environment.

Everything that differs between a laptop and production comes from environment variables; with none set, the
embedded default runs: SQLite, local media, Celery tasks in-process, console email, sandbox payments.
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()


def database_from_env(default: str) -> dict:
    """Parse DATABASE_URL, rejecting anything that is not a database we run on with a message that says so."""
    url = env.str("DATABASE_URL", default=default)
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed or names an unsupported database ({url!r}). "
            "Use postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH."
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # environ raises assorted errors for broken URLs
        raise ImproperlyConfigured(f"DATABASE_URL could not be parsed ({url!r}): {exc}") from exc
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"DATABASE_URL has no database name ({url!r}): add /NAME after the host.")
    if scheme != "sqlite" and config.get("PORT") not in ("", None):
        try:
            int(config["PORT"])
        except ValueError as exc:
            raise ImproperlyConfigured(f"DATABASE_URL has a port that is not a number ({url!r}).") from exc
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60 if scheme != "sqlite" else 0)
    config["CONN_HEALTH_CHECKS"] = True
    if scheme == "sqlite":
        # Concurrent requests (the progress a player reports on pause and at the end at once) each read, then write:
        # in SQLite's default deferred mode the second writer fails at once with "database is locked" rather than
        # wait, as waiting could deadlock. Transactions take the write lock when they begin and wait for it up to
        # ``timeout`` seconds; in WAL mode readers outside a transaction are never held up by a writer.
        config.setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE",
                                                init_command="PRAGMA journal_mode=WAL;")
    return config


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-only-key-change-me-0123456789abcdefghijklmnop")

# Payments. The sandbox provider signs its own webhooks with this secret; Stripe is used when its keys are set.
SANDBOX_WEBHOOK_SECRET = env.str("SANDBOX_WEBHOOK_SECRET", default="whsec_sandbox_" + SECRET_KEY[:24])
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # a Stripe-compatible endpoint (tests use a local one)
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="stripe" if STRIPE_SECRET_KEY else "sandbox")
PLATFORM_FEE_BP = env.int("PLATFORM_FEE_BP", default=1000)  # the first split rule of a new storefront
# How long a started checkout can be paid; then it expires and what it held (a coupon use) is free again.
CHECKOUT_EXPIRES_MINUTES = env.int("CHECKOUT_EXPIRES_MINUTES", default=60)
# The Ed25519 key that signs the ledger chain heads published each day: 32 random bytes, base64. Without it a key is
# derived from SECRET_KEY, which is fine for development but changes whenever the secret does.
LEDGER_SIGNING_KEY = env.str("LEDGER_SIGNING_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Tenant hosts are data (Domain rows), so Django's host check admits any host and TenantMiddleware is the
# allow-list: an unknown host gets the "no such storefront" page.
ALLOWED_HOSTS = ["*"]
# Hosts that serve the platform itself (operator admin, landing page) rather than a storefront.
PLATFORM_HOSTS = env.list("PLATFORM_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# "<slug>.localhost" reaches a tenant without DNS set-up when this suffix is set (development).
TENANT_DEV_HOST_SUFFIX = env.str("TENANT_DEV_HOST_SUFFIX", default="")
# How links to a tenant's storefront are built (invitation emails, landing page).
SITE_SCHEME = env.str("SITE_SCHEME", default="https")
SITE_PORT = env.int("SITE_PORT", default=0)
# seed_demo creates accounts (a superuser among them) whose password and TOTP secret the README publishes.
DEMO_LOGINS_ALLOWED = True

INSTALLED_APPS = [
    "marketplace",
    "accounts",
    "catalog",
    "payments",
    "recommender",
    "distribution",
    "marketplace.apps_admin.ZhikuAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "storages",
]

MIDDLEWARE = [
    "marketplace.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "marketplace.logging.RequestContextMiddleware",
    "marketplace.tenancy.TenantMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "marketplace.tenancy.TenantLocaleMiddleware",
    "marketplace.errors.NulRejectMiddleware",  # after the storefront and its language, which its 400 page shows
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "distribution.middleware.ChannelClickMiddleware",
    "payments.middleware.ReferralMiddleware",
    "marketplace.errors.ApplicationErrorMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "payments.context.price_display",
                "marketplace.tenancy.tenant_context",
            ],
        },
    },
]

DATABASES = {"default": database_from_env(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Role the application runs as on PostgreSQL when row-level security is enforced. The tables' owner (who runs
# migrations) bypasses RLS, so production connects as a login role that is a member of this one and sets it.
DATABASE_RLS_ROLE = env.str("DATABASE_RLS_ROLE", default="zhiku_app")
DATABASE_SET_RLS_ROLE = env.bool("DATABASE_SET_RLS_ROLE", default=False)

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "accounts.backends.TenantRoleBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "storefront:home"

# django-allauth: one global identity per email; verification is sent on sign-up and required to buy
# (payments checks accounts.selectors.user_can_buy), so learners can browse straight away.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "accounts.mfa_adapter.MFAAdapter"  # the issuer is the storefront

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Media: local files by default; any S3-compatible store when AWS_STORAGE_BUCKET_NAME is set. Paid media is
# never public: it sits under private/, which only short-lived signed URLs open. Covers, creator photos and logos
# are public (the bucket's policy lets anyone read outside private/): their plain URLs go into cached pages, feeds
# and posts on other platforms, which a signature would break minutes later.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=300)
    AWS_S3_FILE_OVERWRITE = False
    MEDIA_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"querystring_auth": False}}
    PRIVATE_MEDIA_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"location": "private"}}
else:
    MEDIA_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    # Outside the public /media/tenants/ route: only the checked media view reads these files.
    PRIVATE_MEDIA_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "private"), "base_url": None},
    }
STORAGES = {
    "default": MEDIA_STORAGE,
    "private": PRIVATE_MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Redis: Celery broker and the cache when REDIS_URL is set; otherwise tasks run in-process and the cache is
# per-process memory.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="zhiku"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    # Sessions read from Redis and write through to the database, so a flushed cache signs nobody out.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://"))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task still running when Redis' visibility timeout passes would be handed to a second worker; the hard time
# limit stays well below it so that never happens.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_TIME_LIMIT = 1800
CELERY_TASK_SOFT_TIME_LIMIT = 1500
CELERY_RESULT_EXPIRES = 86400
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Workers keep their database connections between tasks, as web requests do: Celery's Django fix-up would otherwise
# close them before and after every task (a new PostgreSQL backend per task); ``marketplace.celery`` closes the
# unusable or obsolete ones instead, by CONN_MAX_AGE and the health check, like Django's request cycle.
CELERY_DB_REUSE_MAX = 1_000_000

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if env.str("EMAIL_HOST", default="")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Zhiku <no-reply@zhiku.local>")

INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.errors.api_exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {"TITLE": "Zhiku partner API", "VERSION": "1.0.0"}

LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "marketplace.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(tenant)s %(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
if CELERY_TASK_ALWAYS_EAGER:
    # Tasks run in-process on the in-memory broker, which has no host name: kombu would warn about it at first use.
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}

# Recommender: the digest's quiet hours (start, end; local hours in the time zone below) when nothing is sent.
RECOMMENDER_QUIET_HOURS = (env.int("RECOMMENDER_QUIET_START", default=22), env.int("RECOMMENDER_QUIET_END", default=8))

# Distribution. Channel credentials are encrypted with these Fernet keys (comma-separated, newest first, so a key can
# be rotated); without any, a key is derived from SECRET_KEY (development only: it changes with the secret).
CHANNEL_CREDENTIAL_KEYS = env.list("CHANNEL_CREDENTIAL_KEYS", default=[])
# Where the platforms' APIs are (a local stand-in in the tests).
WECHAT_API_BASE = env.str("WECHAT_API_BASE", default="https://api.weixin.qq.com")
WEIBO_API_BASE = env.str("WEIBO_API_BASE", default="https://api.weibo.com")
# Tenant-supplied URLs may not reach private addresses, except in these networks (CIDRs).
DISTRIBUTION_ALLOWED_NETWORKS = env.list("DISTRIBUTION_ALLOWED_NETWORKS", default=[])
# Retries: exponential backoff from the base, with jitter, capped; after the last attempt a delivery is parked.
DISTRIBUTION_RETRY_BASE_SECONDS = env.float("DISTRIBUTION_RETRY_BASE_SECONDS", default=30.0)
DISTRIBUTION_RETRY_CAP_SECONDS = env.float("DISTRIBUTION_RETRY_CAP_SECONDS", default=3600.0)
DISTRIBUTION_MAX_ATTEMPTS = env.int("DISTRIBUTION_MAX_ATTEMPTS", default=10)
# A claimed delivery whose worker has not reported back after this long is taken over by the sweeper.
DISTRIBUTION_LEASE_SECONDS = env.float("DISTRIBUTION_LEASE_SECONDS", default=120.0)
# A queued delivery whose task message has not started after this long (lost with a killed worker) is queued again.
DISTRIBUTION_QUEUE_LEASE_SECONDS = env.float("DISTRIBUTION_QUEUE_LEASE_SECONDS", default=900.0)
# How often an asynchronous publication (WeChat) is polled.
DISTRIBUTION_CONFIRM_SECONDS = env.float("DISTRIBUTION_CONFIRM_SECONDS", default=30.0)
