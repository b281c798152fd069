"""The application's URLs plus ``/bench/bare/``: the smallest Django view, served through the same middleware.

The bare view is the yardstick of bench/storefront.py. It runs behind the whole middleware stack (tenant lookup
and its transaction, sessions, locale, CSRF, auth, messages) but does no work of its own, so the ratio of a page's
requests per second to the bare view's is what the page itself costs.
"""

from django.http import HttpResponse
from django.urls import path

from marketplace.urls import urlpatterns as app_urlpatterns


def bare(request):
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), *app_urlpatterns]
