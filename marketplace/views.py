from django.http import Http404
from django.shortcuts import render

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
