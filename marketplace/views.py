from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language

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


def language(request):
    """Switch the interface language (a cookie) and go back; a signed-in person keeps it on their account too, so
    that their other browsers and the storefronts' emails to them follow it.

    A GET form, unlike Django's ``set_language``: choosing a language is harmless to forge (at worst a person's pages
    and mail change language until they choose again), and pages without a CSRF token can be cached whole for
    visitors who are not signed in.
    """
    target = request.GET.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    code = request.GET.get("language", "")
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
