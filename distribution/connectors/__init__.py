"""Connectors by channel type. Each module implements ``distribution.connectors.base.Connector`` for one platform."""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from .base import Connector

CONNECTORS = {
    "webhook": "distribution.connectors.webhook.WebhookConnector",
    "partner": "distribution.connectors.webhook.PartnerConnector",
    "feed": "distribution.connectors.feed.FeedConnector",
    "wechat": "distribution.connectors.wechat.WeChatConnector",
    "weibo": "distribution.connectors.weibo.WeiboConnector",
    "zhihu": "distribution.connectors.zhihu.ZhihuConnector",
}


@cache
def connector_class(kind: str) -> type[Connector]:
    return import_string(CONNECTORS[kind])


def connector_for(channel) -> Connector:
    """The channel's connector, with its credentials decrypted."""
    from ..credentials import decrypt

    return connector_class(channel.kind)(channel, decrypt(channel.credentials_encrypted))
