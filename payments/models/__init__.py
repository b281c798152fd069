"""Payments: what learners are entitled to, how they paid for it, and the ledger that records every money movement."""

from .entitlements import Entitlement
from .ledger import GENESIS_HASH, ChainHeadPublication, JournalEntry, LedgerAccount, LedgerHead, Payout, Posting
from .orders import Coupon, Order, OrderLine, Payment, PaymentSettings, Refund, SplitRule, WebhookEvent
from .promoters import Promoter, ReferralTouch
from .subscriptions import Subscription, SubscriptionPlan

__all__ = [
    "GENESIS_HASH", "ChainHeadPublication", "Coupon", "Entitlement", "JournalEntry", "LedgerAccount", "LedgerHead",
    "Order", "OrderLine", "Payment", "PaymentSettings", "Payout", "Posting", "Promoter", "ReferralTouch", "Refund",
    "SplitRule", "Subscription", "SubscriptionPlan", "WebhookEvent",
]
