from django.urls import path

from . import views

urlpatterns = [
    path("invitations/<str:token>/", views.invitation_view, name="invitation"),
    path("account/profile/", views.profile_view, name="profile"),
    path("account/privacy/", views.privacy_view, name="privacy"),
    path("account/privacy/export/", views.privacy_export, name="privacy_export"),
    path("account/privacy/delete/", views.privacy_delete, name="privacy_delete"),
]
