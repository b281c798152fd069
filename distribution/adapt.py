"""Adapting one published version of an item to one channel: the ``Post`` its connector sends.

The source is the version's snapshot (what was approved), so a delivery pushes exactly the version it names even
if the item changed since. Paid items travel as their public description plus a paywall link, never their paid
body; an item is paid when the version says so or when it is on sale for a price now (the storefront already asks
for it), so a free version is never pushed whole after the item was made paid. Every link to the storefront carries
the channel's tracking code (``zc``) and UTM parameters, so a visit it brings is counted for the channel and an
order it leads to is attributed to it. Links and images written relative to the storefront (``/item/next/``) are
made absolute on its host first: on another platform they would resolve against that platform's host.
"""

from __future__ import annotations

import mimetypes
import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3
from django.core.files.storage import storages
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from catalog.models import ContentItem, ItemVersion
from catalog.text import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, plain_text
from marketplace.money import format_money

from .connectors.base import Connector, Media, Post
from .markdown import html_to_markdown
from .models import TRACKING_PARAM

SUMMARY_CHARS = 120


def tracked(url: str, *, channel, own_host: str) -> str:
    """``url`` with the channel's tracking code when it points at the storefront, and UTM source on every link."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", ""):
        return url
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("utm_source", channel.kind)
    if not parts.netloc or parts.hostname == own_host:
        query[TRACKING_PARAM] = channel.code
        query.setdefault("utm_medium", "distribution")
        query.setdefault("utm_campaign", channel.code)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _absolute(tenant, url: str) -> str:
    return tenant.url(url) if url.startswith("/") else url


def _media(tenant, name: str, *, private: bool = False, url: str = "") -> Media | None:
    if not name:
        return None
    storage = storages["private" if private else "default"]
    try:
        size = storage.size(name)
    except (OSError, NotImplementedError):
        size = 0
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if not url and not private:
        url = _absolute(tenant, storage.url(name))
    return Media(name=("private:" + name) if private else name, content_type=content_type, url=url, size=size)


def _clean(html: str, *, channel, own_host: str, page: str, allowed_tags=None) -> str:
    """Sanitised ``html`` whose links and images are absolute, as the storefront's ``page`` resolves them, and whose
    links are tracked."""
    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in (("a", "href"), ("img", "src")) and not urlsplit(value.strip()).scheme:
            value = urljoin(page, value.strip())
        if tag == "a" and attribute == "href":
            return tracked(value, channel=channel, own_host=own_host)
        return value

    return nh3.clean(html, tags=set(allowed_tags or ALLOWED_TAGS), attributes=ALLOWED_ATTRIBUTES,
                     attribute_filter=rewrite, link_rel="noopener", url_schemes={"http", "https", "mailto"})


def _excerpt(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=512)
def _summary(description_html: str, subtitle: str, title: str) -> str:
    """The same for every channel a version goes to: computed once per worker."""
    return _excerpt(plain_text(description_html) or subtitle or title, SUMMARY_CHARS)


def _creator_names(item: ContentItem, snap: dict) -> tuple[str, ...]:
    """The version's creators as they are named now, as its categories and tags are: a profile renamed since (by
    its creator, or on erasure when it was named after their address) is not shown under its old name. Read from
    the item's credits, which callers prefetch with its categories and tags."""
    names = {credit.creator_id: credit.creator.name for credit in item.item_creators.all()}
    return tuple(names.get(c["creator"], c["name"]) for c in snap.get("creators", []))


def post_for(*, channel, connector: Connector, item: ContentItem, version: ItemVersion) -> Post:
    """The ``Post`` for ``version`` of ``item`` on ``channel``, within the connector's limits where they can be met
    by shortening the excerpt (a title or body that is too long is left for ``check`` to refuse)."""
    tenant = item.tenant
    snap = version.snapshot
    own_host = urlsplit(tenant.url("/")).hostname
    with translation.override(tenant.default_language):
        page = tenant.url(reverse("catalog:item", args=[item.slug]))
        link = tracked(page, channel=channel, own_host=own_host)
        amount = snap.get("price") or item.price
        is_paid = bool(amount)
        price = format_money(amount, tenant.currency) if is_paid else _("Free")
        description = snap.get("description_html", "")
        summary = _summary(description, snap.get("subtitle", ""), snap["title"])
        # Titles and names are text, not HTML: escaped, so "Using <template> tags" survives the sanitiser whole.
        if is_paid:
            paywall = _("Read the whole of “%(title)s” on %(storefront)s (%(price)s).") % {
                "title": escape(snap["title"]), "storefront": escape(tenant.name), "price": escape(price)}
            body = f'{description}<p><a href="{escape(link)}">{paywall}</a></p>'
        else:
            lessons = "".join(f"<li>{escape(lesson['title'])}</li>" for lesson in snap.get("lessons", []))
            more = _("Open it on %(storefront)s.") % {"storefront": escape(tenant.name)}
            body = (description + snap.get("body_html", "") + (f"<ol>{lessons}</ol>" if lessons else "")
                    + f'<p><a href="{escape(link)}">{more}</a></p>')
        html = _clean(body, channel=channel, own_host=own_host, page=page, allowed_tags=connector.limits.allowed_tags)
        text_limit = connector.limits.text_chars or 280
        head = f"【{snap['title']}】"
        room = text_limit - len(head) - len(link) - 1
        text = f"{head}{_excerpt(summary, room) if room > 1 else ''} {link}"
    enclosure = None
    if not is_paid and snap.get("kind") in ("audio", "video") and snap.get("media"):
        enclosure = _media(tenant, snap["media"], private=True,
                           url=tenant.url(reverse("catalog:item_media", args=[item.slug])))
    return Post(
        item_id=item.pk, version=version.number, kind=snap.get("kind", item.kind), title=snap["title"],
        summary=summary, html=html, markdown=html_to_markdown(html), text=text, link=link, is_paid=is_paid,
        price_display=price, language=snap.get("language", item.language),
        categories=tuple(c.name for c in item.categories.all()), tags=tuple(t.name for t in item.tags.all()),
        creators=_creator_names(item, snap), cover=_media(tenant, snap.get("cover", "")),
        enclosure=enclosure, published_at=version.published_at.isoformat(), content_hash=version.content_hash)
