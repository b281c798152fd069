"""The audit trail's actions: each code the services write, and what it says to the people who read the log.

``audit_log_write`` takes only these codes, so every entry in the log can be read in words.
"""

from django.utils.translation import gettext_lazy as _

ACTIONS = {
    # The platform and a storefront's team
    "tenant.onboarded": _("Storefront onboarded"),
    "domain.added": _("Domain added"),
    "invitation.created": _("Invitation sent"),
    "invitation.resent": _("Invitation sent again"),
    "invitation.accepted": _("Invitation accepted"),
    "membership.joined": _("Joined the storefront"),
    "membership.role_changed": _("Role changed"),
    "membership.removed": _("Removed from the team"),
    "user.erased": _("Personal data erased"),
    # Catalog
    "catalog.item_submitted": _("Item submitted for review"),
    "catalog.item_approved": _("Item approved and published"),
    "catalog.item_rejected": _("Item rejected"),
    "catalog.item_archived": _("Item archived"),
    "catalog.item_restored": _("Item put back on sale"),
    "catalog.item_updated": _("Item's changes published"),
    "catalog.item_completed": _("Item completed by a learner"),
    "catalog.review_deleted": _("Review deleted"),
    "catalog.import": _("Catalog imported"),
    # Payments
    "payments.checkout_started": _("Checkout started"),
    "payments.payment_succeeded": _("Payment succeeded"),
    "payments.payment_failed": _("Payment failed"),
    "payments.payment_cancelled": _("Payment cancelled"),
    "payments.payment_retried": _("Payment tried again"),
    "payments.paid_twice": _("Paid for what the learner already owned"),
    "payments.dispute_opened": _("Dispute opened"),
    "payments.refund_created": _("Refund made"),
    "payments.refund_failed": _("Refund failed at the provider"),
    "payments.entitlement_granted": _("Access granted"),
    "payments.entitlement_revoked": _("Access ended"),
    "payments.entitlement_restored": _("Access restored after a failed refund"),
    "payments.split_rule_created": _("Revenue split changed"),
    "payments.payout_run": _("Payout run"),
    "payments.promoter_applied": _("Promoter applied"),
    "payments.promoter_invited": _("Promoter invited"),
    "payments.promoter_approved": _("Promoter approved"),
    "payments.promoter_rejected": _("Promoter rejected"),
    "payments.promoter_suspended": _("Promoter suspended"),
    "payments.subscription_started": _("Subscription started"),
    "payments.subscription_renewed": _("Subscription renewed"),
    "payments.subscription_cancelled": _("Subscription set to end at the period's end"),
    "payments.subscription_resumed": _("Subscription set to renew again"),
    "payments.subscription_switch_chosen": _("Plan change chosen"),
    "payments.subscription_switched": _("Plan changed"),
    "payments.subscription_ended": _("Subscription ended"),
    "payments.subscription_restored": _("Subscription restored after a failed refund"),
    "payments.subscription_payment_unapplied": _(
        "Subscription payment not applied: the learner holds another subscription"),
    # Distribution
    "distribution.channel_created": _("Channel connected"),
    "distribution.channel_changed": _("Channel settings changed"),
    "distribution.channel_verified": _("Channel connection tested"),
    "distribution.channel_deleted": _("Channel removed"),
    "distribution.channel_backfilled": _("Catalog pushed to a channel"),
    "distribution.deliveries_planned": _("Pushes planned"),
    "distribution.push_scheduled": _("Push time set"),
    "distribution.delivery_retried": _("Push tried again"),
    "distribution.delivery_replayed": _("Push replayed"),
    "distribution.delivery_marked_done": _("Push marked as done by hand"),
    # Recommendations
    "recommender.personalisation_changed": _("Personalised recommendations switched on or off"),
}


def describe(action: str) -> str:
    """The action in words; a code no longer written (from an older release) reads as itself."""
    return str(ACTIONS.get(action, action))
