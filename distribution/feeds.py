"""A feed channel's RSS 2.0 and Atom 1.0 documents: the items live on the channel, newest first.

Only items on sale now are listed, each rendered from its current version: a feed is read whenever a reader asks,
so it shows what the storefront shows, not what the last delivery recorded (one may not have run yet, or the channel
was turned off meanwhile). Each entry is the item's ``Post`` for the channel, as a push would send it: tracked
links, and for paid items (paid in that version, or now) the public description and a paywall link only. Free
audio and video carry their media as an enclosure (podcast apps download it). Entries are identified by a tag URI of
the item, so a new version updates the entry in readers instead of adding one.

XML 1.0 cannot carry most control characters (a form feed pasted from a PDF, say), and Django's feed writer refuses
the whole document over one: every text put into a feed goes through ``xml_text`` first.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import or_
from urllib.parse import urlsplit

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_datetime
from django.utils.feedgenerator import Atom1Feed, Enclosure, Rss201rev2Feed
from django.views.decorators.http import require_GET

from catalog.models import ContentItem, ItemVersion

from .adapt import post_for
from .connectors.feed import FeedConnector
from .models import Channel, Publication

MAX_ENTRIES = 50
MAX_AGE = 300
# What XML 1.0 cannot carry (its ``Char`` production): C0 controls other than tab, newline and carriage return,
# surrogates, and U+FFFE/U+FFFF.
NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str | None) -> str | None:
    """``value`` without the characters XML 1.0 cannot carry; those that separate words (form feed, vertical tab,
    the information separators) become a space, the rest are dropped."""
    if not value:
        return value
    return NOT_XML.sub(lambda match: " " if match.group().isspace() else "", value)


def _feed(request, code: str, feed_class):
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise Http404("Feeds belong to a storefront.")
    channel = get_object_or_404(Channel.objects.select_related("tenant").prefetch_related("tenant__domains"),
                                tenant=tenant, code=code, kind=Channel.Kind.FEED, is_enabled=True)
    publications = list(Publication.objects.filter(channel=channel, status=Publication.Status.LIVE,
                                                   item__status=ContentItem.Status.PUBLISHED)
                        .select_related("item")
                        .prefetch_related("item__categories", "item__tags", "item__item_creators__creator")
                        .order_by("-published_at", "-id")[:MAX_ENTRIES])
    versions = {}
    if publications:
        wanted = reduce(or_, (Q(item_id=p.item_id, number=p.item.version) for p in publications))
        versions = {(v.item_id, v.number): v for v in ItemVersion.objects.filter(wanted)}
    # A feed has neither credentials nor target settings to read.
    connector = FeedConnector(channel, {})
    home = channel.tenant.url("/")
    host = urlsplit(home).hostname
    feed = feed_class(title=xml_text(f"{channel.tenant.name} · {channel.name}"), link=home,
                      description=xml_text(channel.tenant.name), language=channel.tenant.default_language,
                      feed_url=request.build_absolute_uri(), feed_guid=f"tag:{host},"
                      f"{channel.tenant.created_at:%Y-%m-%d}:feed/{channel.code}")
    for publication in publications:
        version = versions.get((publication.item_id, publication.item.version))
        if version is None:
            continue
        item = publication.item
        item.tenant = channel.tenant  # one tenant (its domains prefetched) for every link
        post = post_for(channel=channel, connector=connector, item=item, version=version)
        media = post.enclosure
        feed.add_item(
            title=xml_text(post.title), link=post.link, description=xml_text(post.html),
            unique_id=f"tag:{host},{channel.tenant.created_at:%Y-%m-%d}:item/{item.pk}",
            unique_id_is_permalink=False, pubdate=publication.published_at,
            updateddate=parse_datetime(post.published_at) if post.published_at else None,
            author_name=xml_text(", ".join(post.creators)) or None,
            categories=[xml_text(category) for category in post.categories],
            enclosures=[Enclosure(media.url, str(media.size), media.content_type)] if media else None)
    response = HttpResponse(content_type=feed.content_type)
    feed.write(response, "utf-8")
    patch_cache_control(response, public=True, max_age=MAX_AGE)
    return response


@require_GET
def rss(request, code: str):
    return _feed(request, code, Rss201rev2Feed)


@require_GET
def atom(request, code: str):
    return _feed(request, code, Atom1Feed)
