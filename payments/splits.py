"""How a paid amount is shared, as pure functions over integers.

An order's amount without tax is split in one largest-remainder step: the platform fee and any commission take their
basis points of the whole; each item's creators take their basis points of what is left of that item's amount after
those; the storefront keeps the rest. Because it is one split, the parts always sum to the amount. Tax is never
shared. Refunds claw back in proportion to what each account received, with the same rule.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from marketplace.money import MoneyError, split_largest_remainder

WHOLE = 10000


@dataclass(frozen=True)
class Share:
    """Who receives a part: an account kind and, for creators and promoters, whose."""

    kind: str
    party: int | None = None


PLATFORM, TENANT, TAX = Share("platform"), Share("tenant"), Share("tax")


def split_amount(amount: int, *, platform_fee_bp: int, commission: tuple[Share, int] | None = None,
                 commissions: list[tuple[Share, int]] = (), creators: list[tuple[int, int]] = ()) -> dict[Share, int]:
    """Split ``amount`` (no tax in it) between the platform, commissions (a partner, or a promoter and the one who
    recruited them), creators ``[(creator id, share bp)]`` and the storefront: ``split_pieces`` of one piece."""
    return split_pieces([(amount, creators)], platform_fee_bp=platform_fee_bp,
                        commissions=[*commissions, *([commission] if commission else [])])


def split_pieces(pieces: list[tuple[int, list[tuple[int, int]]]], *, platform_fee_bp: int,
                 commissions: list[tuple[Share, int]] = ()) -> dict[Share, int]:
    """Split the sum of ``pieces`` ``[(amount without tax, its creators [(creator id, share bp)])]`` (an order's
    items; a bundle's items) in one largest-remainder step: the platform fee and commissions take their basis points
    of the whole sum, each piece's creators their basis points of what is left of that piece, and the storefront the
    rest. One step, so the fee is the agreed share of the sale however many pieces it has, and the parts sum to it.

    Creators' shares on one piece that add up to more than the whole (the admin refuses them; older data may hold
    them) share that piece's creators' part in their proportion, so a captured payment is always booked."""
    commission_bp = sum(bp for _share, bp in commissions)
    if platform_fee_bp + commission_bp > WHOLE:
        raise MoneyError("the platform fee and commissions exceed the whole amount")
    rest = WHOLE - platform_fee_bp - commission_bp
    # A piece's weights sum to 10000 × scale, where scale is its creators' total when that exceeds the whole, else
    # the whole; scaling each piece to the common multiple of the scales, times its amount, weighs it by its amount.
    scales = [max(sum(bp for _creator, bp in creators), WHOLE) for _amount, creators in pieces]
    common = math.lcm(*scales) if scales else WHOLE
    total = sum(amount for amount, _creators in pieces)
    weights: dict[Share, int] = defaultdict(int)
    weights[PLATFORM] += platform_fee_bp * common * total
    for share, bp in commissions:
        weights[share] += bp * common * total
    storefront = 0
    for (amount, creators), scale in zip(pieces, scales, strict=True):
        factor = amount * (common // scale)
        for creator, bp in creators:
            weights[Share("creator", creator)] += rest * bp * factor
        storefront += rest * (scale - sum(bp for _creator, bp in creators)) * factor
    weights[TENANT] += storefront
    shares = list(weights)
    return dict(zip(shares, split_largest_remainder(total, [weights[share] for share in shares]), strict=True))


def clawback(amount: int, received: dict[Share, int]) -> dict[Share, int]:
    """What each share gives back when ``amount`` of a sale is refunded: in proportion to what it received."""
    shares = [share for share, part in received.items() if part > 0]
    parts = split_largest_remainder(amount, [received[share] for share in shares])
    return {share: part for share, part in zip(shares, parts, strict=True) if part}


def clawback_remaining(amount: int, held: dict[Share, int]) -> dict[Share, int]:
    """What each share gives back of a refund of ``amount``, in proportion to what it still holds of the sale.

    Splitting over what is still held (not over what was first received) means no part is ever negative or larger
    than what the share holds, and the refund that completes a sale's refunds returns exactly the rest: partial
    refunds leave no rounding behind.
    """
    if amount > sum(held.values()):
        raise MoneyError("a refund larger than what the shares still hold")
    return clawback(amount, held)


def tax_of(amount: int, *, rate_bp: int, included: bool, step: int = 1) -> int:
    """The tax in (``included``) or on top of ``amount``, rounded half up to the minor unit; tax added on top is
    charged, so it is rounded to the currency's charge ``step`` instead."""
    if rate_bp == 0 or amount == 0:
        return 0
    if included:
        return (amount * rate_bp * 2 + (WHOLE + rate_bp)) // (2 * (WHOLE + rate_bp))
    return (amount * rate_bp * 2 + WHOLE * step) // (2 * WHOLE * step) * step
