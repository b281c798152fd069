"""Development on a laptop: the embedded default, with debug pages and <slug>.localhost storefronts."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
TENANT_DEV_HOST_SUFFIX = env.str("TENANT_DEV_HOST_SUFFIX", default=".localhost")
SITE_SCHEME = env.str("SITE_SCHEME", default="http")
SITE_PORT = env.int("SITE_PORT", default=8000)
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING["handlers"]["console"]["formatter"] = "json" if LOG_FORMAT == "json" else "text"  # noqa: F405
