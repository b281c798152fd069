"""Settings for bench/storefront.py: the local settings with DEBUG off and the bare comparison view's URL added.

DEBUG stays off because with it Django records every SQL query of every request, which would slow the pages
under test. Everything else (database, cache, middleware, templates) comes from the environment exactly as in
``marketplace.settings.local``; the benchmark sets DATABASE_URL and REDIS_URL for the server it starts.
"""

from marketplace.settings.local import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.bench_urls"
