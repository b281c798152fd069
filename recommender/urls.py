from django.urls import path

from . import views

app_name = "recommender"

urlpatterns = [
    path("recommendations/settings/", views.preferences, name="preferences"),
    path("recommendations/goal/", views.goal, name="goal"),
    path("recommendations/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("r/<str:token>/", views.track, name="track"),
]
