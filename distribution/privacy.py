"""What distribution holds about a person: the visits they made through channels' tracked links.

A visit is also a channel's exposure and the evidence an order was attributed by, so erasure keeps the row and cuts
it from the person (and from their browser's visitor id); the export lists them.
"""

from accounts import privacy

from .models import ChannelClick


def export(user, tenant) -> dict:
    return {
        "visits_through_channels": [
            {"channel": c.channel.name, "landing_path": c.landing_path, "at": c.created_at.isoformat()}
            for c in ChannelClick.objects.filter(user=user).select_related("channel")
        ],
    }


def erase(user, tenant) -> None:
    ChannelClick.objects.filter(user=user).update(user=None, visitor="")


privacy.register("distribution", exporter=export, eraser=erase)
