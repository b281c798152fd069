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

CURRENCY_SYMBOLS: dict[str, str] = {
    "CNY": "¥", "JPY": "¥", "USD": "$", "HKD": "HK$", "TWD": "NT$", "SGD": "S$", "AUD": "A$", "CAD": "C$",
    "EUR": "€", "GBP": "£", "KRW": "₩", "VND": "₫", "CHF": "CHF ", "BHD": "BD ", "KWD": "KD ",
}


def format_money(amount: int, currency: str) -> str:
    """``amount`` minor units as the current locale writes money: ¥99.00, $1,299.50, ¥1,200 (JPY)."""
    from decimal import Decimal

    from django.utils.formats import number_format

    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    major = Decimal(amount).scaleb(-exponent)
    return f"{CURRENCY_SYMBOLS.get(currency, currency + ' ')}{number_format(major, exponent, force_grouping=True)}"
