"""Connectors by channel type. Each module implements ``distribution.connectors.base.Connector`` for one platform."""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from .base import Connector, PermanentError

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
    """The channel's connector, with its credentials decrypted.

    Stored settings it cannot work with are a ``PermanentError``, so a push parks with the reason and "Test
    connection" shows it: credentials none of the configured keys decrypts (a key was dropped before the channel was
    saved again; entering them again fixes it), or target settings that are not a JSON object."""
    from marketplace.errors import ApplicationError

    from ..credentials import decrypt

    if not isinstance(channel.options or {}, dict):
        raise PermanentError('The channel\'s target settings must be a JSON object, such as {"author": "Ann"}: '
                             "correct them, then retry.", code="options_invalid")
    try:
        credentials = decrypt(channel.credentials_encrypted)
    except ApplicationError as exc:
        raise PermanentError(exc.message, code=exc.code) from exc
    return connector_class(channel.kind)(channel, credentials)
