from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from marketplace.tenancy import TenantTask

from .models import Order


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def receipt_send(*, tenant_id: int, order_id: int) -> None:
    """Email the receipt of a paid order, in the storefront's language (SMTP errors are retried)."""
    order = Order.objects.select_related("tenant", "user").prefetch_related("lines").get(pk=order_id)
    tenant = order.tenant
    with translation.override(tenant.default_language):
        context = {"order": order, "tenant": tenant,
                   "url": tenant.url(reverse("payments:order", args=[order.number]))}
        send_mail(
            subject=render_to_string("payments/email/receipt_subject.txt", context).strip(),
            message=render_to_string("payments/email/receipt_message.txt", context),
            from_email=None,
            recipient_list=[order.user.email],
        )
