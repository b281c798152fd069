"""The promoter programme (分销): applying or being invited by the team, approval, referral touches and the
attribution of a sale.

Attribution is last touch: of the learner's touches (by account, or by the browser's visitor id before they signed
up) inside the storefront's attribution window, the newest one through an approved promoter wins. Its id, source and
time are stored on the order as the commission's evidence. The promoter's recruiter earns the second level.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import in_use
from marketplace.errors import ApplicationError
from marketplace.services import audit_log_write

from .models import Promoter, ReferralTouch
from .services import payment_settings

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read aloud and typed


def _programme(tenant):
    conf = payment_settings(tenant=tenant)
    if not conf.promoters_enabled:
        raise ApplicationError(_("This storefront has no promoter programme."), code="promoters_disabled",
                               status=404)
    return conf


# A promoter earns while approved and while their account is there: one who deleted it (or was shut out of it) can
# be neither paid nor reached, though their links are still posted around the web.
EARNING = Q(status=Promoter.Status.APPROVED) & in_use("user__")


def promoter_earns(promoter: Promoter) -> bool:
    """Whether the promoter earns commissions now: approved, and their account still there."""
    return promoter.status == Promoter.Status.APPROVED and promoter.user.in_use


def promoter_for_code(*, code: str) -> Promoter | None:
    """The promoter a referral code (any case, spaces around it) credits now, or None."""
    code = (code or "").strip().upper()
    return Promoter.objects.filter(EARNING, code=code).first() if code else None


def touch_record(*, tenant, code: str, visitor: str = "", user=None, path: str = "",
                 source: str = ReferralTouch.Source.LINK) -> ReferralTouch | None:
    """Remember a visit through a promoter's link or code; codes that credit nobody (unknown, not approved, their
    promoter's account gone) are ignored. The checkout refuses such a code before it gets here."""
    conf = payment_settings(tenant=tenant)
    if not conf.promoters_enabled or not code:
        return None
    promoter = promoter_for_code(code=code)
    if promoter is None:
        return None
    return ReferralTouch.objects.create(tenant=tenant, promoter=promoter, source=source, visitor=visitor[:64],
                                        user=user if getattr(user, "is_authenticated", False) else None,
                                        landing_path=path[:300])


@dataclass
class Attribution:
    promoter: Promoter
    second_level: Promoter | None
    evidence: dict
    at: datetime  # when the learner came through the promoter's link or code


def attribution_for(*, tenant, user, visitor: str = "", now=None, conf=None) -> Attribution | None:
    """The promoter (and their recruiter) a purchase by ``user`` now is attributed to, with the evidence. ``conf``
    is the storefront's payment settings when the caller has read them already."""
    conf = conf or payment_settings(tenant=tenant)
    if not conf.promoters_enabled:
        return None
    now = now or timezone.now()
    who = Q(user=user) | (Q(visitor=visitor) if visitor else Q(pk__in=[]))
    touches = (ReferralTouch.objects.filter(who, in_use("promoter__user__"),
                                            created_at__gte=now - timedelta(days=conf.attribution_window_days),
                                            promoter__status=Promoter.Status.APPROVED)
               .select_related("promoter__recruited_by__user").order_by("-created_at", "-id"))
    if not conf.self_referral_allowed:  # the buyer's own link or code: the promoter who brought them earns it
        touches = touches.exclude(promoter__user=user)
    touch = touches.first()
    if touch is None:
        return None
    promoter = touch.promoter
    second = promoter.recruited_by
    if second is not None and (not promoter_earns(second) or (
            second.user_id == user.pk and not conf.self_referral_allowed)):
        second = None
    return Attribution(promoter=promoter, second_level=second, evidence={
        "touch": touch.pk, "source": touch.source, "code": promoter.code, "at": touch.created_at.isoformat(),
        "second_level": second.code if second else None}, at=touch.created_at)


def _promoter_create(*, tenant, user, actor, action: str, **fields) -> Promoter:
    """The learner's promoter profile with a fresh referral code; theirs already, if one was made meanwhile."""
    for _attempt in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
        try:
            with transaction.atomic():
                promoter = Promoter.objects.create(tenant=tenant, user=user, code=code, **fields)
                audit_log_write(tenant=tenant, actor=actor, action=action, target=promoter)
                return promoter
        except IntegrityError:
            if Promoter.objects.filter(user=user).exists():
                return Promoter.objects.get(user=user)
    raise ApplicationError(_("Could not make a referral code; try again."), code="promoter_code_clash")


def promoter_apply(*, tenant, user, visitor: str = "") -> Promoter:
    """A learner asks to become a promoter; whoever's link brought them becomes their recruiter."""
    _programme(tenant)
    existing = Promoter.objects.filter(user=user).first()
    if existing is not None:
        return existing
    brought_by = attribution_for(tenant=tenant, user=user, visitor=visitor)
    return _promoter_create(tenant=tenant, user=user, actor=user, action="payments.promoter_applied",
                            recruited_by=brought_by.promoter if brought_by else None)


def promoter_invitee(*, email: str):
    """The learner of the open storefront the team invites by ``email``; a clear error when there is none, or when
    they are a promoter already."""
    from accounts.models import Membership

    membership = (Membership.objects.select_related("user")
                  .filter(in_use("user__"), user__email__iexact=email.strip())
                  .first())
    if membership is None:
        raise ApplicationError(_("No one with this email address has an account on this storefront: they sign up "
                                 "first, or apply on the promoter page."), code="promoter_invitee_unknown",
                               extra={"field": "email"})
    if Promoter.objects.filter(user=membership.user, status=Promoter.Status.APPROVED).exists():
        raise ApplicationError(_("This learner is a promoter already."), code="promoter_exists",
                               extra={"field": "email"})
    return membership.user


def promoter_invite(*, tenant, email: str, actor) -> Promoter:
    """The team invites a learner into the programme: the team's invitation is its approval, so they are a promoter
    at once (a profile they applied for, or one rejected or suspended before, is approved), and an email tells them
    where their referral link is. Nobody recruited them: the second level is for promoters' own recruits."""
    from .tasks import promoter_email_send

    _programme(tenant)
    user = promoter_invitee(email=email)
    with transaction.atomic():
        promoter = Promoter.objects.filter(user=user).first()
        if promoter is not None:
            promoter = promoter_decide(promoter=promoter, status=Promoter.Status.APPROVED, actor=actor, notify=False)
        else:
            promoter = _promoter_create(tenant=tenant, user=user, actor=actor, action="payments.promoter_invited",
                                        status=Promoter.Status.APPROVED, approved_at=timezone.now())
        promoter_email_send.delay_on_commit(tenant_id=tenant.pk, promoter_id=promoter.pk, reason="invited")
    return promoter


def promoter_decide(*, promoter: Promoter, status: str, actor, notify: bool = True) -> Promoter:
    """The team approves, rejects or suspends a promoter. Someone who becomes a promoter by it is told by email
    (unless ``notify`` is false: the team's invitation sends its own). The decision the promoter already has changes
    nothing."""
    from .tasks import promoter_email_send

    if status not in (Promoter.Status.APPROVED, Promoter.Status.REJECTED, Promoter.Status.SUSPENDED):
        raise ApplicationError(_("Unknown decision."), code="promoter_status_invalid")
    with transaction.atomic():
        promoter = Promoter.objects.select_for_update().select_related("user").get(pk=promoter.pk)
        if promoter.status == status:  # decided so already: nothing to record or tell
            return promoter
        if status == Promoter.Status.APPROVED and not promoter.user.in_use:
            raise ApplicationError(_("This person's account is gone: they cannot be a promoter."),
                                   code="promoter_account_gone")
        became_promoter = status == Promoter.Status.APPROVED and promoter.status != status
        promoter.status = status
        if status == Promoter.Status.APPROVED and promoter.approved_at is None:
            promoter.approved_at = timezone.now()
        promoter.save(update_fields=["status", "approved_at"])
        audit_log_write(tenant=promoter.tenant, actor=actor, action=f"payments.promoter_{status}", target=promoter)
        if became_promoter and notify:
            promoter_email_send.delay_on_commit(tenant_id=promoter.tenant_id, promoter_id=promoter.pk,
                                                reason="approved")
    return promoter
