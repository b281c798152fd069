from django.urls import path

from . import feeds

app_name = "distribution"

urlpatterns = [
    path("feeds/<str:code>.rss", feeds.rss, name="feed_rss"),
    path("feeds/<str:code>.atom", feeds.atom, name="feed_atom"),
]
