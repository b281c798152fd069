from celery import shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import translation

from marketplace.tenancy import TenantTask

from .adapter import from_address
from .models import Invitation
from .selectors import email_language, email_owner


@shared_task(base=TenantTask, autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def invitation_email_send(*, tenant_id: int, invitation_id: int, token: str) -> None:
    """Email the invitation link (SMTP errors are transient and retried)."""
    invitation = Invitation.objects.select_related("tenant").get(pk=invitation_id)
    tenant = invitation.tenant
    owner = email_owner(email=invitation.email)
    context = {"invitation": invitation, "tenant": tenant, "url": tenant.url(f"/invitations/{token}/"),
               "has_account": owner is not None}
    # Someone with an account reads it in their language; anyone else as the storefront speaks, not the inviter.
    with translation.override(email_language(user=owner, tenant=tenant)):
        subject = render_to_string("accounts/email/invitation_subject.txt", context).strip()
        message = render_to_string("accounts/email/invitation_message.txt", context)
    send_mail(subject=subject, message=message, from_email=from_address(tenant), recipient_list=[invitation.email])
