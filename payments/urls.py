from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/sandbox/<str:token>/", views.sandbox_checkout, name="sandbox_checkout"),
    path("payments/webhooks/<str:provider_name>/", views.webhook, name="webhook"),
    path("plans/", views.plans, name="plans"),
    path("promote/", views.promote, name="promote"),
    path("promote/statement.json", views.promote_statement, name="promote_statement"),
    path("subscription/", views.subscription, name="subscription"),
    path("ledger/heads.json", views.ledger_heads, name="ledger_heads"),
    path("orders/", views.orders, name="orders"),
    path("orders/<str:number>/", views.order_detail, name="order"),
]
