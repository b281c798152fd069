from django.urls import path

from . import views

app_name = "catalog"

urlpatterns = [
    path("browse/", views.browse, name="browse"),
    path("learn/", views.my_learning, name="my_learning"),
    path("item/<str:slug>/", views.item_detail, name="item"),
    path("item/<str:slug>/learn/", views.learn, name="learn"),
    path("item/<str:slug>/lesson/<int:lesson_id>/", views.learn, name="lesson"),
    path("item/<str:slug>/progress/", views.progress, name="progress"),
    path("item/<str:slug>/review/", views.review, name="review"),
    path("item/<str:slug>/media/", views.item_media, name="item_media"),
    path("item/<str:slug>/lesson/<int:lesson_id>/media/", views.lesson_media, name="lesson_media"),
    path("item/<str:slug>/captions/", views.item_captions, name="item_captions"),
    path("item/<str:slug>/lesson/<int:lesson_id>/captions/", views.lesson_captions, name="lesson_captions"),
    path("creators/<str:slug>/", views.creator_detail, name="creator"),
    path("bundles/<str:slug>/", views.bundle_detail, name="bundle"),
    path("paths/<str:slug>/", views.path_detail, name="path"),
]
