import logging

from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts.adapter import from_address
from accounts.models import User
from accounts.selectors import email_language
from marketplace.errors import ApplicationError
from marketplace.tasks import for_each_storefront
from marketplace.tenancy import TenantTask, current_tenant

from .models import Order

logger = logging.getLogger(__name__)


def _mail(tenant, template: str, to: User, context: dict) -> None:
    """Send ``payments/email/<template>_subject.txt`` and ``_message.txt`` to one person, from the storefront and in
    their language (``accounts.selectors.email_language``)."""
    context = {"tenant": tenant, **context}
    with translation.override(email_language(user=to, tenant=tenant)):
        send_mail(subject=render_to_string(f"payments/email/{template}_subject.txt", context).strip(),
                  message=render_to_string(f"payments/email/{template}_message.txt", context),
                  from_email=from_address(tenant), recipient_list=[to.email])


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def receipt_send(*, tenant_id: int, order_id: int) -> None:
    """Email the receipt of a paid order, in the learner's language (SMTP errors are retried)."""
    tenant = current_tenant()
    order = Order.objects.select_related("user").prefetch_related("lines").get(pk=order_id)
    _mail(tenant, "receipt", order.user,
          {"order": order, "url": tenant.url(reverse("payments:order", args=[order.number]))})


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def renewal_email_send(*, tenant_id: int, subscription_id: int) -> None:
    """Tell the learner their subscription renews and where to pay, before the grace period ends."""
    from .models import Subscription

    sub = Subscription.objects.select_related("tenant", "user", "plan", "renewal_order").get(pk=subscription_id)
    if sub.status != Subscription.Status.PAST_DUE or sub.renewal_order is None:
        return  # paid or ended (a refund, say) since the sweep queued this: nothing to pay any more
    tenant = sub.tenant
    _mail(tenant, "renewal", sub.user, {"sub": sub, "url": tenant.url(reverse("payments:subscription"))})


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def refund_notice_send(*, tenant_id: int, refund_id: int) -> None:
    """Tell the learner what was refunded of their order and what it means for their access, in their language."""
    from .models import Refund

    refund = Refund.objects.select_related("payment__order__user").get(pk=refund_id)
    order = refund.payment.order
    if refund.failed_at is not None or not order.user.in_use:
        return  # undone since it was queued, or nobody to tell
    tenant = current_tenant()
    _mail(tenant, "refund", order.user,
          {"refund": refund, "order": order, "fully": order.status == Order.Status.REFUNDED,
           "url": tenant.url(reverse("payments:order", args=[order.number]))})


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def promoter_email_send(*, tenant_id: int, promoter_id: int, reason: str) -> None:
    """Tell a learner they are a promoter now (``reason``: "invited" by the team, or their application
    "approved"), and where their referral link is."""
    from .models import Promoter

    promoter = Promoter.objects.select_related("user").get(pk=promoter_id)
    if promoter.status != Promoter.Status.APPROVED or not promoter.user.in_use:
        return  # suspended since, or gone: nothing to announce
    tenant = current_tenant()
    template = {"invited": "promoter_invited", "approved": "promoter_approved"}[reason]
    _mail(tenant, template, promoter.user, {"url": tenant.url(reverse("payments:promote"))})


@shared_task(base=TenantTask)
def subscriptions_sweep(*, tenant_id: int) -> dict:
    from marketplace.tenancy import current_tenant

    from .subscriptions import subscriptions_sweep as sweep

    return sweep(tenant=current_tenant())


@shared_task
def subscriptions_sweep_all() -> int:
    """Beat's entry point: one sweep task per active storefront."""
    return for_each_storefront(subscriptions_sweep)


@shared_task(base=TenantTask)
def checkouts_expire(*, tenant_id: int) -> int:
    from .services import checkouts_expire as expire

    return expire(tenant=current_tenant())


@shared_task
def checkouts_expire_all() -> int:
    """Beat's entry point: expire unpaid checkouts on every storefront, deactivated ones included."""
    return for_each_storefront(checkouts_expire, deactivated_too=True)


@shared_task(base=TenantTask)
def shares_release(*, tenant_id: int) -> int:
    from marketplace.tenancy import current_tenant

    from .payouts import shares_release as release

    return release(tenant=current_tenant())


@shared_task
def shares_release_all() -> int:
    """Beat's entry point: release held shares on every storefront, deactivated ones included."""
    return for_each_storefront(shares_release, deactivated_too=True)


@shared_task(base=TenantTask)
def ledger_head_publish(*, tenant_id: int) -> str:
    from marketplace.tenancy import current_tenant

    from .heads import head_publish

    return head_publish(tenant=current_tenant()).hash


@shared_task
def ledger_heads_publish_all() -> int:
    """Beat's entry point: sign and publish every storefront's chain head for the day, deactivated ones
    included (their payments are still booked)."""
    return for_each_storefront(ledger_head_publish, deactivated_too=True)


@shared_task(base=TenantTask, bind=True, max_retries=6)
def paid_twice_refund(self, *, tenant_id: int, payment_id: int) -> int | None:
    """Refund a payment for what the learner already owned. A provider that cannot be reached is asked again; one
    that refuses is left to the team, whom the order's "paid twice" audit entry and this log tell."""
    from .models import Payment
    from .services import paid_twice_refund as refund

    try:
        made = refund(payment=Payment.objects.get(pk=payment_id))
    except ApplicationError as exc:
        if exc.code == "provider_unavailable" and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=60 * 2 ** self.request.retries) from exc  # 1 to 32 minutes
        logger.error("payment %s was paid twice and is not refunded: %s", payment_id, exc.message)
        return None
    return made.pk if made else None


@shared_task(base=TenantTask)
def checkouts_owned_close(*, tenant_id: int, user_id: int) -> int:
    from django.contrib.auth import get_user_model

    from .services import checkouts_owned_close as close

    return close(user=get_user_model().objects.get(pk=user_id))
