"""Money arithmetic and the one rounding rule, as properties over integers (no database)."""

from fractions import Fraction

import pytest
from django.utils import translation
from hypothesis import assume, given
from hypothesis import strategies as st

from marketplace.money import CURRENCY_EXPONENTS, Money, MoneyError, format_money, split_largest_remainder
from payments import splits
from payments.splits import (
    PLATFORM,
    TAX,
    TENANT,
    WHOLE,
    Share,
    clawback,
    clawback_remaining,
    split_amount,
    split_pieces,
    tax_of,
)

amounts = st.integers(min_value=-(10**15), max_value=10**15)
non_negative_amounts = st.integers(min_value=0, max_value=10**12)
weights = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12).filter(lambda w: sum(w) > 0)
currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
basis_points = st.integers(min_value=0, max_value=WHOLE)


def exact_share(total: int, weight: int, weight_sum: int) -> Fraction:
    return Fraction(total * weight, weight_sum)


# --- split_largest_remainder ----------------------------------------------------------------------------------------

class TestSplitLargestRemainder:
    @given(total=amounts, weights=weights)
    def test_parts_sum_to_the_total(self, total, weights):
        parts = split_largest_remainder(total, weights)
        assert len(parts) == len(weights)
        assert all(isinstance(p, int) for p in parts)
        assert sum(parts) == total

    @given(total=amounts, weights=weights)
    def test_each_part_is_within_one_unit_of_its_exact_share(self, total, weights):
        weight_sum = sum(weights)
        for part, weight in zip(split_largest_remainder(total, weights), weights, strict=True):
            assert abs(part - exact_share(total, weight, weight_sum)) < 1

    @given(total=amounts, weights=weights)
    def test_a_zero_weight_gets_nothing(self, total, weights):
        for part, weight in zip(split_largest_remainder(total, weights), weights, strict=True):
            if weight == 0:
                assert part == 0

    @given(total=amounts, weights=weights)
    def test_parts_have_the_sign_of_the_total(self, total, weights):
        parts = split_largest_remainder(total, weights)
        assert all(p >= 0 for p in parts) if total >= 0 else all(p <= 0 for p in parts)

    @given(total=amounts, weights=weights)
    def test_a_negative_total_is_the_mirror_of_the_positive_split(self, total, weights):
        assert split_largest_remainder(-total, weights) == [-p for p in split_largest_remainder(total, weights)]

    def test_left_over_units_go_to_the_largest_remainders_ties_to_the_earlier_part(self):
        assert split_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
        assert split_largest_remainder(-100, [1, 1, 1]) == [-34, -33, -33]
        assert split_largest_remainder(10, [1, 2]) == [3, 7]
        assert split_largest_remainder(1, [100, 900]) == [0, 1]

    @pytest.mark.parametrize("bad", [[-1, 2], [3, -3, 1]])
    def test_negative_weights_are_refused(self, bad):
        with pytest.raises(MoneyError):
            split_largest_remainder(10, bad)

    def test_a_non_zero_amount_cannot_be_split_over_zero_weights(self):
        with pytest.raises(MoneyError):
            split_largest_remainder(1, [0, 0])
        with pytest.raises(MoneyError):
            split_largest_remainder(1, [])
        assert split_largest_remainder(0, [0, 0]) == [0, 0]


# --- Money ----------------------------------------------------------------------------------------------------------

class TestMoney:
    @pytest.mark.parametrize("amount", [1.0, 0.5, True, False, "100", None])
    def test_only_whole_numbers_of_minor_units(self, amount):
        with pytest.raises(MoneyError):
            Money(amount, "CNY")

    def test_decimals_are_refused_too(self):
        from decimal import Decimal

        with pytest.raises(MoneyError):
            Money(Decimal("1.00"), "CNY")

    @given(code=st.text(min_size=0, max_size=4).filter(lambda c: c not in CURRENCY_EXPONENTS))
    def test_unknown_currency_is_refused(self, code):
        with pytest.raises(MoneyError):
            Money(100, code)

    @pytest.mark.parametrize("code", ["cny", "XXX", "RMB", ""])
    def test_named_unknown_currencies(self, code):
        with pytest.raises(MoneyError):
            Money(1, code)

    @given(a=amounts, b=amounts, first=currencies, second=currencies)
    def test_arithmetic_across_currencies_is_refused(self, a, b, first, second):
        assume(first != second)
        x, y = Money(a, first), Money(b, second)
        for operation in (lambda: x + y, lambda: x - y, lambda: x < y, lambda: x <= y):
            with pytest.raises(MoneyError):
                operation()
        assert x != y

    @given(a=amounts, b=amounts, currency=currencies)
    def test_arithmetic_within_a_currency(self, a, b, currency):
        x, y = Money(a, currency), Money(b, currency)
        assert (x + y) == Money(a + b, currency)
        assert (x - y) == Money(a - b, currency)
        assert -x == Money(-a, currency)
        assert (x < y) == (a < b)
        assert (x <= y) == (a <= b)
        assert bool(x) == (a != 0)
        assert hash(x) == hash(Money(a, currency))

    @pytest.mark.parametrize("other", [1, 1.0, None, "1"])
    def test_plain_numbers_do_not_mix_with_money(self, other):
        with pytest.raises(MoneyError):
            Money(1, "CNY") + other

    def test_money_is_immutable(self):
        m = Money(1, "CNY")
        with pytest.raises(AttributeError):
            m.amount = 2

    @given(amount=amounts, bp=basis_points, currency=currencies)
    def test_percent_bp_rounds_half_up(self, amount, bp, currency):
        exact = Fraction(amount * bp, WHOLE)
        result = Money(amount, currency).percent_bp(bp)
        assert result.currency == currency
        assert abs(result.amount - exact) <= Fraction(1, 2)
        # a tie goes up: exactly half a unit rounds towards +infinity
        assert result.amount == (exact + Fraction(1, 2)).__floor__()

    @pytest.mark.parametrize(("amount", "bp", "expected"), [
        (5, 1000, 1),      # 0.5 -> 1
        (4, 1000, 0),      # 0.4 -> 0
        (15, 1000, 2),     # 1.5 -> 2
        (25, 1000, 3),     # 2.5 -> 3 (half up, not half even)
        (9999, 600, 600),  # 599.94 -> 600
        (100, 10000, 100),
        (100, 0, 0),
    ])
    def test_percent_bp_table(self, amount, bp, expected):
        assert Money(amount, "CNY").percent_bp(bp) == Money(expected, "CNY")

    @given(amount=amounts, weights=weights, currency=currencies)
    def test_split_keeps_the_currency_and_the_total(self, amount, weights, currency):
        parts = Money(amount, currency).split(weights)
        assert {p.currency for p in parts} == {currency}
        assert sum(p.amount for p in parts) == amount


# --- splits.split_amount --------------------------------------------------------------------------------------------

@st.composite
def creator_shares(draw):
    """Up to five distinct creators whose shares sum to at most 100%."""
    count = draw(st.integers(min_value=0, max_value=5))
    ids = draw(st.lists(st.integers(min_value=1, max_value=10**6), min_size=count, max_size=count, unique=True))
    left, shares = WHOLE, []
    for creator in ids:
        bp = draw(st.integers(min_value=0, max_value=left))
        left -= bp
        shares.append((creator, bp))
    return shares


@st.composite
def fee_and_commission(draw):
    fee = draw(basis_points)
    if draw(st.booleans()):
        return fee, None
    commission_bp = draw(st.integers(min_value=0, max_value=WHOLE - fee))
    return fee, (Share("promoter", draw(st.integers(min_value=1, max_value=10**6))), commission_bp)


class TestSplitAmount:
    @given(amount=non_negative_amounts, fee=fee_and_commission(), creators=creator_shares())
    def test_parts_sum_exactly_to_the_amount_and_are_never_negative(self, amount, fee, creators):
        platform_fee_bp, commission = fee
        parts = split_amount(amount, platform_fee_bp=platform_fee_bp, commission=commission, creators=creators)
        assert sum(parts.values()) == amount
        assert all(part >= 0 for part in parts.values())
        for creator, _bp in creators:
            assert parts[Share("creator", creator)] >= 0
        assert TAX not in parts

    @given(amount=non_negative_amounts, fee=fee_and_commission(), creators=creator_shares())
    def test_each_party_is_within_one_unit_of_its_exact_share(self, amount, fee, creators):
        platform_fee_bp, commission = fee
        commission_bp = commission[1] if commission else 0
        parts = split_amount(amount, platform_fee_bp=platform_fee_bp, commission=commission, creators=creators)
        rest = Fraction(amount * (WHOLE - platform_fee_bp - commission_bp), WHOLE)
        assert abs(parts[PLATFORM] - Fraction(amount * platform_fee_bp, WHOLE)) < 1
        if commission:
            assert abs(parts[commission[0]] - Fraction(amount * commission_bp, WHOLE)) < 1
        for creator, bp in creators:
            assert abs(parts[Share("creator", creator)] - rest * bp / WHOLE) < 1
        creator_bp = sum(bp for _c, bp in creators)
        assert abs(parts[TENANT] - rest * (WHOLE - creator_bp) / WHOLE) < 1

    def test_a_worked_example(self):
        parts = split_amount(1000, platform_fee_bp=1000, creators=[(7, 5000)])
        assert parts == {PLATFORM: 100, Share("creator", 7): 450, TENANT: 450}

    def test_fee_and_commission_over_the_whole_are_refused(self):
        with pytest.raises(MoneyError):
            split_amount(100, platform_fee_bp=6000, commission=(Share("partner", 1), 4001))

    def test_creator_shares_over_the_whole_share_the_creators_part_in_their_proportion(self):
        # 6000 + 4000 + 2000 bp is 120 %: the creators take all that is left after the fee, as 1/2, 1/3 and 1/6.
        parts = split_amount(1200, platform_fee_bp=1000, creators=[(1, 6000), (2, 4000), (3, 2000)])
        assert parts == {PLATFORM: 120, Share("creator", 1): 540, Share("creator", 2): 360,
                         Share("creator", 3): 180, TENANT: 0}

    @given(amount=non_negative_amounts, fee=fee_and_commission(),
           creators=st.lists(st.integers(min_value=1, max_value=WHOLE), min_size=1, max_size=5).filter(
               lambda bps: sum(bps) > WHOLE))
    def test_creator_shares_over_the_whole_still_sum_to_the_amount(self, amount, fee, creators):
        platform_fee_bp, commission = fee
        commission_bp = commission[1] if commission else 0
        credits = list(enumerate(creators, start=1))
        parts = split_amount(amount, platform_fee_bp=platform_fee_bp, commission=commission, creators=credits)
        assert sum(parts.values()) == amount and parts[TENANT] == 0
        rest = Fraction(amount * (WHOLE - platform_fee_bp - commission_bp), WHOLE)
        for creator, bp in credits:
            assert abs(parts[Share("creator", creator)] - rest * bp / sum(creators)) < 1


@given(pieces=st.lists(st.tuples(non_negative_amounts, creator_shares()), min_size=1, max_size=4),
       fee=fee_and_commission())
def test_an_orders_pieces_are_split_once_the_fee_and_commission_within_one_unit_of_their_share(pieces, fee):
    platform_fee_bp, commission = fee
    commissions = [commission] if commission else []
    parts = split_pieces(pieces, platform_fee_bp=platform_fee_bp, commissions=commissions)
    total = sum(amount for amount, _creators in pieces)
    assert sum(parts.values()) == total and all(part >= 0 for part in parts.values())
    assert abs(parts[PLATFORM] - Fraction(total * platform_fee_bp, WHOLE)) < 1
    if commission:
        assert abs(parts[commission[0]] - Fraction(total * commission[1], WHOLE)) < 1
    rest_bp = WHOLE - platform_fee_bp - (commission[1] if commission else 0)
    exact: dict[Share, Fraction] = {}
    for amount, creators in pieces:
        for creator, bp in creators:
            share = Share("creator", creator)
            exact[share] = exact.get(share, 0) + Fraction(amount * rest_bp * bp, WHOLE * WHOLE)
    for share, value in exact.items():
        assert abs(parts[share] - value) < 1


# --- splits.clawback ------------------------------------------------------------------------------------------------

@st.composite
def sale_and_refund(draw):
    received = draw(st.dictionaries(
        st.one_of(st.sampled_from([PLATFORM, TENANT, TAX]),
                  st.builds(Share, st.just("creator"), st.integers(min_value=1, max_value=50))),
        st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8))
    total = sum(received.values())
    assume(total > 0)
    return received, draw(st.integers(min_value=1, max_value=total))


class TestClawback:
    @given(case=sale_and_refund())
    def test_sums_to_the_refunded_amount(self, case):
        received, amount = case
        assert sum(clawback(amount, received).values()) == amount

    @given(case=sale_and_refund())
    def test_no_share_gives_back_more_than_it_received(self, case):
        received, amount = case
        for share, part in clawback(amount, received).items():
            assert 0 < part <= received[share]

    @given(case=sale_and_refund())
    def test_a_full_refund_gives_back_exactly_what_was_received(self, case):
        received, _amount = case
        total = sum(received.values())
        assert clawback(total, received) == {s: p for s, p in received.items() if p}

    def test_a_worked_example(self):
        assert clawback(500, {PLATFORM: 100, TENANT: 900}) == {PLATFORM: 50, TENANT: 450}


@st.composite
def sale_and_refunds(draw):
    """What a sale's shares received, and partial refunds (positive amounts) that add up to at most its total."""
    received, _amount = draw(sale_and_refund())
    total = sum(received.values())
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=total), min_size=1, max_size=8)))
    if draw(st.booleans()):
        cuts.append(total)  # refunded in full
    steps = [0, *cuts]
    return received, [(a, b) for a, b in zip(steps, steps[1:], strict=False) if b > a]


class TestClawbackRemaining:
    """Each refund is split over what each share still holds of the sale (``refund_create``)."""

    @given(case=sale_and_refunds())
    def test_parts_are_never_negative_never_exceed_what_is_held_and_a_full_refund_returns_everything(self, case):
        received, refunds = case
        given_back = dict.fromkeys(received, 0)
        for before, after in refunds:
            held = {share: received[share] - given_back[share] for share in received}
            step = clawback_remaining(after - before, held)
            assert sum(step.values()) == after - before
            assert all(0 < part <= held[share] for share, part in step.items())
            for share, part in step.items():
                given_back[share] += part
        if refunds and refunds[-1][1] == sum(received.values()):
            assert given_back == received  # a full refund in parts returns every share to zero

    def test_the_alabama_paradox_case_no_longer_credits_a_share(self):
        received = split_amount(999, platform_fee_bp=1000, creators=[(7, 5000)])
        assert received == {PLATFORM: 100, Share("creator", 7): 450, TENANT: 449}
        first = clawback_remaining(5, received)
        assert first == {PLATFORM: 1, Share("creator", 7): 2, TENANT: 2}
        held = {share: received[share] - first.get(share, 0) for share in received}
        assert all(part > 0 for part in clawback_remaining(1, held).values())

    def test_more_than_is_held_is_refused(self):
        with pytest.raises(MoneyError):
            clawback_remaining(11, {PLATFORM: 1, TENANT: 9})


# --- splits.tax_of --------------------------------------------------------------------------------------------------

class TestTax:
    @given(amount=non_negative_amounts, rate=basis_points)
    def test_included_tax_is_at_most_the_amount_and_rounds_half_up(self, amount, rate):
        tax = tax_of(amount, rate_bp=rate, included=True)
        assert 0 <= tax <= amount
        exact = Fraction(amount * rate, WHOLE + rate)
        assert abs(tax - exact) <= Fraction(1, 2)
        assert tax == (exact + Fraction(1, 2)).__floor__()

    @given(amount=non_negative_amounts, rate=basis_points)
    def test_exclusive_tax_is_the_rate_rounded_half_up(self, amount, rate):
        tax = tax_of(amount, rate_bp=rate, included=False)
        assert tax == (Fraction(amount * rate, WHOLE) + Fraction(1, 2)).__floor__()
        assert tax == Money(amount, "CNY").percent_bp(rate).amount

    @pytest.mark.parametrize(("amount", "rate", "included", "expected"), [
        (10600, 600, True, 600),     # 6% included in 106.00
        (10000, 600, False, 600),    # 6% on top of 100.00
        (1, 600, False, 0),          # 0.06 -> 0
        (9, 600, False, 1),          # 0.54 -> 1
        (0, 600, True, 0),
        (1000, 0, True, 0),
        (1000, 10000, True, 500),    # 100% tax included: half of the price is tax
    ])
    def test_table(self, amount, rate, included, expected):
        assert tax_of(amount, rate_bp=rate, included=included) == expected

    def test_whole_is_basis_points(self):
        assert splits.WHOLE == 10000


# --- formatting -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (0, "JPY", "¥0"),
    (5, "JPY", "¥5"),
    (1200, "JPY", "¥1,200"),
    (1234567, "JPY", "¥1,234,567"),
    (0, "KWD", "KD 0.000"),
    (5, "KWD", "KD 0.005"),
    (1000, "KWD", "KD 1.000"),
    (1234567, "KWD", "KD 1,234.567"),
    (129950, "USD", "$1,299.50"),
    (9900, "CNY", "¥99.00"),
])
def test_format_money_in_english(amount, currency, expected):
    with translation.override("en"):
        assert format_money(amount, currency) == expected
        assert str(Money(amount, currency)) == expected


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    (1200, "JPY", "¥1200"),
    (1234567, "KWD", "KD 1234.567"),
    (9900, "CNY", "¥99.00"),
])
def test_format_money_in_chinese_keeps_the_minor_unit_digits(amount, currency, expected):
    with translation.override("zh-hans"):
        assert format_money(amount, currency) == expected


@given(amount=st.integers(min_value=0, max_value=10**12), currency=currencies)
def test_formatting_shows_exactly_the_currency_exponent_digits(amount, currency):
    with translation.override("en"):
        text = format_money(amount, currency)
    exponent = CURRENCY_EXPONENTS[currency]
    number = text.split(" ")[-1].lstrip("¥$€£₩₫HKNTSACD").replace(",", "")
    if exponent:
        whole, fraction = number.split(".")
        assert len(fraction) == exponent
        assert int(whole) * 10**exponent + int(fraction) == amount
    else:
        assert "." not in number
        assert int(number) == amount
