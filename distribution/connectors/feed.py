"""RSS and Atom feeds: a pull channel. Readers fetch ``distribution.feeds``; a delivery only changes what the feed
lists (the pipeline records the publication live or withdrawn), so nothing is sent anywhere."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext

from .base import Connector, Post, PublicationState, Receipt


def feed_urls(channel) -> tuple[str, str]:
    """The channel's RSS and Atom addresses on its storefront's primary host."""
    return tuple(channel.tenant.url(reverse(name, args=[channel.code]))
                 for name in ("distribution:feed_rss", "distribution:feed_atom"))


class FeedConnector(Connector):
    """A storefront's RSS 2.0 and Atom 1.0 feeds of the items published to the channel."""

    kind = "feed"
    pushes = False

    def _receipt(self, note: str) -> Receipt:
        return Receipt(external_url=feed_urls(self.channel)[0], note=note)

    def verify(self) -> str:
        rss, atom = feed_urls(self.channel)
        return f"RSS: {rss} · Atom: {atom}"

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        return self._receipt(gettext("Listed in the channel's feeds."))

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        return self._receipt(gettext("The feeds list the new version."))

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        return self._receipt(gettext("Removed from the channel's feeds."))
