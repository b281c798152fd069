"""How amounts are written for people: the locale's digits, the currency's sign, and a minus in front of both."""

import pytest
from django.utils import translation

from marketplace.money import Money, format_money


@pytest.mark.parametrize(("amount", "currency", "language", "shown"), [
    (-2648, "CNY", "zh-hans", "-¥26.48"),
    (-500, "USD", "en", "-$5.00"),
    (-129950, "USD", "en", "-$1,299.50"),
    (-1200, "JPY", "en", "-¥1,200"),
    (-12500, "KWD", "en", "-KD 12.500"),
    (2648, "CNY", "zh-hans", "¥26.48"),
    (0, "USD", "en", "$0.00"),
])
def test_a_negative_amount_puts_the_minus_before_the_currency_sign(amount, currency, language, shown):
    with translation.override(language):
        assert format_money(amount, currency) == shown


def test_a_claw_back_reads_as_a_negative_amount():
    with translation.override("en"):
        assert str(-Money(500, "USD")) == "-$5.00"
