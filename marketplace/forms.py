"""Form fields shared by the apps."""

from decimal import Decimal

from django import forms
from django.db import models

from .money import CURRENCY_EXPONENTS


class MoneyField(forms.DecimalField):
    """An amount typed as it is shown, in the currency's major unit (99.00 for ¥99.00, 1200 for ¥1,200, 12.500 for
    KD 12.500), with at most the currency's decimals; cleaned to the integer of minor units that is stored."""

    def __init__(self, *, currency: str, **kwargs):
        self.exponent = CURRENCY_EXPONENTS.get(currency, 2)
        kwargs.setdefault("min_value", 0)
        super().__init__(max_digits=18, decimal_places=self.exponent, **kwargs)

    def prepare_value(self, value):
        """A stored amount (minor units) as it is typed; what the person typed stays as typed."""
        if isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value).scaleb(-self.exponent)  # with the currency's decimals: 9900 -> 99.00
        return value

    def clean(self, value):
        amount = super().clean(value)
        return None if amount is None else int(amount.scaleb(self.exponent))

    def has_changed(self, initial, data):
        try:
            typed = self.to_python(data)
        except forms.ValidationError:
            return True
        return typed != (self.prepare_value(initial) if initial not in (None, "") else None)


def https_urls(db_field, **kwargs):
    """A model form's ``formfield_callback``: a link typed without its scheme ("example.com/hook") is taken as https,
    as browsers take it (and as Django 6 will)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)
