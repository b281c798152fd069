from django import template
from django.utils.translation import gettext as _

from marketplace.money import format_money

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    return format_money(int(amount), currency)


@register.filter
def price(amount: int, currency: str) -> str:
    """A price tag: the amount, or "Free"."""
    return _("Free") if not amount else format_money(int(amount), currency)


@register.filter
def stars(rating: float | None) -> str:
    if rating is None:
        return ""
    full = int(round(rating))
    return "★" * full + "☆" * (5 - full)


@register.filter
def minutes(value: int) -> str:
    hours, mins = divmod(int(value or 0), 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": mins} if mins else _("%(h)d h") % {"h": hours}
    return _("%(m)d min") % {"m": mins}


@register.filter
def div60(seconds: int) -> str:
    """A lesson's length, as m:ss."""
    mins, secs = divmod(int(seconds or 0), 60)
    return f"{mins}:{secs:02d}"


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)
