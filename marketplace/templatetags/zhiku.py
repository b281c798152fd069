from django import template
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.translation import get_language
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


@register.filter
def page_title(page: str, tenant) -> str:
    """A page's <title>: "<page> · <storefront>", or the storefront's name alone for a page that names none."""
    site = tenant.name if tenant else "Zhiku 知库"
    return format_html("{} · {}", page, site) if page.strip() else conditional_escape(site)


@register.filter
def utc_offset(value) -> str:
    """The zone a time is shown in, as its offset from UTC in the active time zone: "UTC", "UTC+8", "UTC-3:30".
    Zone abbreviations are ambiguous (CST is China's and America's)."""
    if not value:
        return ""
    minutes = int(timezone.localtime(value).utcoffset().total_seconds()) // 60
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes > 0 else '-'}{hours}" + (f":{rest:02d}" if rest else "")


@register.simple_tag
def list_separator() -> str:
    """What goes between the names of a list (a byline's creators): "、" in Chinese, ", " otherwise."""
    return "、" if (get_language() or "").startswith("zh") else ", "


@register.simple_tag(takes_context=True)
def learner_links(context) -> dict:
    """Which of the storefront's pages about the learner's own dealings the account menu links to: their
    subscription while they have one, the promoter programme while it is open (or they are a promoter, whose
    earnings stay in view)."""
    from payments.selectors import learner_links as links

    request = context.get("request")
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    if tenant is None or not getattr(user, "is_authenticated", False):
        return {}
    return links(user=user, tenant=tenant)
