"""Currencies the marketplace sells in, with their ISO 4217 minor-unit exponent.

Amounts are always integers in the currency's minor unit; the exponent says how many of those make one major unit
(0 for zero-decimal currencies such as JPY and KRW).
"""

CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "TWD": 2,
    "SGD": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
}
CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCY_EXPONENTS)]

# Card networks, and so Stripe, take the three-decimal dinars only in whole tens of fils (the last digit 0). Every
# amount a learner is charged or refunded in them is a multiple of this step, in minor units; prices and fixed
# coupons are entered in it, and a percentage's discount or added tax is rounded to it.
CHARGE_STEPS: dict[str, int] = {"BHD": 10, "KWD": 10}

CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥", "JPY": "¥", "USD": "$", "HKD": "HK$", "TWD": "NT$", "SGD": "S$", "AUD": "A$", "CAD": "C$",
    "EUR": "€", "GBP": "£", "KRW": "₩", "VND": "₫", "CHF": "CHF ", "BHD": "BD ", "KWD": "KD ",
}


def format_money(amount: int, currency: str) -> str:
    """``amount`` minor units as the current locale writes money: ¥99.00, $1,299.50, ¥1,200 (JPY), -¥26.48 (the
    minus before the sign, as both English and Chinese write it)."""
    from decimal import Decimal

    from django.utils.formats import number_format

    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    major = Decimal(abs(amount)).scaleb(-exponent)
    sign = "-" if amount < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
    return f"{sign}{symbol}{number_format(major, exponent, force_grouping=True)}"


def major_units(amount: int, currency: str) -> str:
    """``amount`` minor units as a plain number of the currency's major unit (45.00, 1200, 12.500): what a
    spreadsheet reads as a number, next to a currency column."""
    from decimal import Decimal

    return f"{Decimal(amount).scaleb(-CURRENCY_EXPONENTS.get(currency, 2)):f}"


def charge_step(currency: str) -> int:
    return CHARGE_STEPS.get(currency, 1)


def charge_step_check(amount, currency: str, *, field: str) -> None:
    """Refuse, on the form's ``field``, an amount the currency cannot be charged in (see ``CHARGE_STEPS``)."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    step = charge_step(currency)
    if isinstance(amount, int) and amount % step:
        raise ValidationError({field: _("%(currency)s is charged in steps of %(step)s: enter a multiple of "
                                        "%(step)s.") % {"currency": currency, "step": format_money(step, currency)}},
                              code="off_charge_step")


class MoneyError(ValueError):
    """An amount or currency that money arithmetic refuses (the services turn it into an ApplicationError)."""


def split_largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` minor units in proportion to ``weights``; the parts always sum to ``total``.

    Each part first gets the floor of its exact share; the units left over go one each to the parts with the largest
    remainders, ties to the earlier part. Works for negative totals (a refund) by splitting the magnitude.
    This is the one rounding rule for every split in Zhiku: revenue shares, refunds' claw-backs, coupons over lines.
    """
    if any(w < 0 for w in weights):
        raise MoneyError("split weights must not be negative")
    weight_sum = sum(weights)
    if not weights or weight_sum == 0:
        if total == 0:
            return [0] * len(weights)
        raise MoneyError("cannot split a non-zero amount over zero weights")
    sign, magnitude = (-1, -total) if total < 0 else (1, total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    left = magnitude - sum(floors)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        floors[index] += 1
    return [sign * part for part in floors]


class Money:
    """An integer amount of a currency's minor unit. Immutable; arithmetic only within one currency."""

    __slots__ = ("amount", "currency")

    def __init__(self, amount: int, currency: str):
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise MoneyError(f"an amount is a whole number of minor units, not {amount!r}")
        if currency not in CURRENCY_EXPONENTS:
            raise MoneyError(f"unknown currency {currency!r}")
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "currency", currency)

    def __setattr__(self, name, value):
        raise AttributeError("Money is immutable")

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {getattr(other, 'currency', other)!r}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def __eq__(self, other) -> bool:
        return isinstance(other, Money) and (self.amount, self.currency) == (other.amount, other.currency)

    def __lt__(self, other: "Money") -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: "Money") -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __bool__(self) -> bool:
        return self.amount != 0

    def __repr__(self) -> str:
        return f"Money({self.amount}, {self.currency!r})"

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)

    def split(self, weights: list[int]) -> list["Money"]:
        return [Money(part, self.currency) for part in split_largest_remainder(self.amount, weights)]

    def percent_bp(self, basis_points: int) -> "Money":
        """``basis_points``/10000 of this amount, rounded half up (for a single share such as a tax or a fee)."""
        return Money((self.amount * basis_points * 2 + 10000) // 20000, self.currency)
