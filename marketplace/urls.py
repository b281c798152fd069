from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from accounts import views as accounts_views

from . import views

storefront_patterns = ([
    path("", views.home, name="home"),
    path("legal/terms/", views.legal, {"document": "terms"}, name="terms"),
    path("legal/privacy/", views.legal, {"document": "privacy"}, name="privacy"),
], "storefront")

handler400 = "marketplace.views.bad_request"
handler500 = "marketplace.views.server_error"

urlpatterns = [
    path("", include(storefront_patterns)),
    path("", include("catalog.urls")),
    path("", include("payments.urls")),
    path("", include("recommender.urls")),
    path("", include("distribution.urls")),
    path("admin/", admin.site.urls),
    # Keeps ``next`` through TOTP set-up, so an invited owner goes on to the admin.
    path("accounts/2fa/totp/activate/", accounts_views.totp_activate, name="mfa_activate_totp"),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("language/", views.language, name="language"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]

if not settings.AWS_STORAGE_BUCKET_NAME:
    # Public branding (tenant logos) from local storage; paid media is served by a checked view, never from here.
    urlpatterns.append(path("media/tenants/<path:path>", serve, {"document_root": settings.MEDIA_ROOT / "tenants"}))
