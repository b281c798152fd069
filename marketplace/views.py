import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from .models import Tenant


def home(request):
    """A tenant host shows its storefront; a platform host lists the storefronts it runs."""
    if request.tenant is None:
        tenants = Tenant.objects.filter(is_active=True).prefetch_related("domains")
        return render(request, "marketplace/landing.html", {"tenants": tenants})
    from catalog.views import home as storefront_home

    return storefront_home(request)


def storefront_only(view):
    def wrapper(request, *args, **kwargs):
        if request.tenant is None:
            raise Http404("This page belongs to a storefront.")
        return view(request, *args, **kwargs)

    return wrapper


LEGAL_HTML_TTL = 3600  # a change of the sanitiser's rules reaches every page within the hour
# The storefront's own texts, by the address they are shown at: the Tenant field and the page's heading.
LEGAL_DOCUMENTS = {
    "terms": ("terms", _("Terms of sale")),
    "privacy": ("privacy_policy", _("Privacy policy")),
}


def _legal_html(source: str) -> str:
    """``source`` rendered and sanitised, cached by its own digest: an edited text has a new key, and two storefronts
    share an entry only when they wrote the same words, which render the same."""
    from catalog.text import render_rich_text

    key = "legal:html:" + hashlib.sha256(source.encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        html = render_rich_text(source)
        cache.set(key, html, LEGAL_HTML_TTL)
    return html


def _legal_page(request, document: str):
    field, heading = LEGAL_DOCUMENTS[document]
    source = getattr(request.tenant, field)
    if not source:
        raise Http404("This storefront has not written this text.")
    return render(request, "marketplace/legal.html", {"heading": heading, "body_html": _legal_html(source)})


@storefront_only
def legal(request, document: str):
    """The storefront's terms of sale or privacy policy, as its owner wrote them in the admin (Markdown, sanitised
    like item descriptions), or 404 when it has written none.

    Rendered from the Markdown when shown rather than kept as a second, rendered copy on the tenant's row, which
    every request loads. Visitors who are not signed in get the whole page from the page cache, which saving the
    tenant starts afresh (``catalog.signals``); for a signed-in reader the rendered text comes from the cache (long
    terms take tens of milliseconds to render).
    """
    from catalog.views import anonymous_page_cache  # catalog's views import this module

    return anonymous_page_cache(_legal_page)(request, document)


def _language_next(request, params) -> str:
    """Where the language menu goes back to: ``next`` when it is an address on this host, else the home page."""
    target = params.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    return target


def _same_origin(request) -> bool:
    """Whether a POST came from one of this host's pages, by its ``Origin`` (which browsers send with every
    cross-site POST; a request without one is a same-site form of an older browser, or not a browser)."""
    origin = request.META.get("HTTP_ORIGIN")
    return origin is None or origin == f"{'https' if request.is_secure() else 'http'}://{request.get_host()}"


@csrf_exempt
def language(request):
    """Switch the interface language (a cookie) and go back; a signed-in person keeps it on their account too, so
    that their other browsers and the storefronts' emails to them follow it.

    A POST, like Django's ``set_language``, since it changes what is saved. A signed-in person's form carries a
    CSRF token, checked here as the middleware would (the way DRF's ``SessionAuthentication`` does). A visitor who
    is not signed in gets the form without one: pages for them are cached whole (``catalog.views
    .anonymous_page_cache``), and a page that used a token is never stored, so a token there would end that cache
    for every page. Their choice only sets their own browser's cookie, and one posted from another site is ignored.

    A GET (an old bookmark of the former GET form) changes nothing and just goes to ``next``.
    """
    if request.method != "POST":
        return HttpResponseRedirect(_language_next(request, request.GET))
    response = HttpResponseRedirect(_language_next(request, request.POST))
    if request.user.is_authenticated:
        refused = CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
        if refused is not None:
            return refused
    elif not _same_origin(request):
        return response
    code = request.POST.get("language", "")
    if code and check_for_language(code) and code in dict(settings.LANGUAGES):
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE,
                            path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
                            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                            samesite=settings.LANGUAGE_COOKIE_SAMESITE)
        if request.user.is_authenticated:
            from accounts.services import profile_update

            profile_update(user=request.user, language=code)
    return response


def _failure_page(request, template: str, status: int) -> HttpResponse:
    """The storefront's own page for a failure, in its language, rendered without the request's context processors
    (they read the session and the user, and the database may be what failed)."""
    return HttpResponse(render_to_string(template, {"tenant": getattr(request, "tenant", None)}), status=status)


def bad_request(request, exception):
    return _failure_page(request, "400.html", 400)


def server_error(request):
    return _failure_page(request, "500.html", 500)
