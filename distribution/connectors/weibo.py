"""Weibo, through its open API (https://open.weibo.com/wiki/微博API), with a user's OAuth 2.0 access token.

* ``POST /2/statuses/share.json`` (https://open.weibo.com/wiki/2/statuses/share) posts the microblog: ``status`` is
  at most 140 units long and must contain a link on one of the app's secure domains (the item's tracked link);
  ``pic`` (JPEG, PNG or GIF under 5 MB) makes it a multipart request. The answer is the status, ``idstr`` its id.
* ``POST /2/statuses/destroy.json`` (``id``) deletes it; ``GET /2/account/get_uid.json`` names the token's account and
  is not rate-limited, which makes it the connection test.
* Errors are ``{"error", "error_code", "request"}`` (https://open.weibo.com/wiki/Error_code): 1xxxx are system
  errors, 2xxxx service errors. They are classified by ``error_code``; the HTTP status varies between endpoints.

Length is counted as the Weibo clients count it: two half-width (Latin-1) characters make one unit, any other
character is one, and a link is shortened to a t.cn address worth 20 half-width characters whatever its length, up
to 140 half-width characters (beyond that the excess counts too).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import replace

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .. import http
from .base import Connector, CredentialField, Limits, PermanentError, Post, PublicationState, Receipt, TransientError

TEXT_UNITS = 140
PIC_TYPES = ("image/jpeg", "image/png", "image/gif")
PIC_MAX_BYTES = 5 * 1024 * 1024
URL_HALF_WIDTHS = 20  # http://t.cn/xxxxxxxx
_URL = re.compile(r"https?://[-A-Za-z0-9_$.+!*()/,:;@&=?~#%]+")

TOKEN_CODES = {21301, 21314, 21315, 21316, 21317, 21319, 21327, 21332, 21501}
RATE_CODES = {10022, 10023, 10024, 20016}  # 20016: posting too often ("out of limit")
BUSY_CODES = {10001, 10002, 10003, 10009, 10010, 10011}
GONE = 20101  # target weibo does not exist
POSTED_SLOWLY = 20032  # "update success, while server slow now": posted, but the answer has no post to record


def _half_widths(text: str) -> int:
    return sum(1 if ord(char) <= 0xFF else 2 for char in text)


def weibo_length(text: str) -> int:
    """The length of ``text`` in Weibo's units (what its 140 limit counts)."""
    total = 0
    for url in _URL.findall(text):
        size = _half_widths(url)
        total += URL_HALF_WIDTHS if size <= TEXT_UNITS else size - TEXT_UNITS + URL_HALF_WIDTHS
    return math.ceil((total + _half_widths(_URL.sub("", text))) / 2)


def _fit(text: str, units: int) -> str:
    """``text`` cut (with an ellipsis) to at most ``units``."""
    if weibo_length(text) <= units:
        return text
    while text and weibo_length(text + "…") > units:
        text = text[:-1]
    return text.rstrip() + "…" if text.strip() else ""


class WeiboConnector(Connector):
    """Posts an item as a microblog: its title, an excerpt and the tracked link, with the cover as picture."""

    kind = "weibo"
    limits = Limits(text_chars=TEXT_UNITS)
    credential_fields = (CredentialField("access_token", _("Access token (OAuth 2.0)")),)

    # -- the text -------------------------------------------------------------------------------------------------
    def status_text(self, post: Post) -> str:
        """The post's text if it fits Weibo's count, else ``【title】excerpt link`` with the excerpt shortened.

        Weibo refuses topics (``#...#``) in shared text, so ``#`` becomes its full-width form outside the link.
        """
        def plain(text: str) -> str:
            return text.replace("#", "＃")

        if not post.link:
            raise PermanentError("Weibo only takes shared posts that contain a link.", code="link_missing")
        if post.link in post.text:
            before, _, after = post.text.partition(post.link)
            text = plain(before) + post.link + plain(after)
            if weibo_length(text) <= TEXT_UNITS:
                return text
        head = f"【{plain(post.title)}】"
        room = TEXT_UNITS - weibo_length(f"{head} {post.link}")
        if room < 0:
            raise PermanentError(f"Even the title and the link alone are {weibo_length(f'{head} {post.link}')} "
                                 f"units long; Weibo allows {TEXT_UNITS} (two Latin characters count as one). "
                                 "Shorten the title.", code="too_long")
        return f"{head}{_fit(plain(post.summary), room)} {post.link}"

    def check(self, post: Post) -> None:
        super().check(replace(post, text=""))  # the text is measured as Weibo measures it, not by len()
        self.status_text(post)

    # -- calls ------------------------------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return settings.WEIBO_API_BASE.rstrip("/") + path

    def _token(self) -> str:
        token = self.credentials.get("access_token", "")
        if not token:
            raise PermanentError("The channel has no Weibo access token.", code="invalid_credentials")
        return token

    def _call(self, method: str, path: str, **kwargs) -> tuple[dict, int]:
        response = http.request(method, self._url(path), **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error_code" not in body:
            http.raise_for_status(response, what="Weibo")
            if not isinstance(body, dict):
                raise TransientError(f"Weibo answered HTTP {response.status_code} without a JSON object.",
                                     code="weibo_bad_answer", status=response.status_code)
            return body, response.status_code
        raise self._error(body, response)

    def _error(self, body: dict, response) -> Exception:
        try:
            code = int(body["error_code"])
        except (TypeError, ValueError):
            code = 0
        status = response.status_code
        message = f"Weibo refused {body.get('request') or 'the call'} ({code}: {body.get('error', '')})."
        if code in TOKEN_CODES:
            return PermanentError("The Weibo access token has expired or was revoked: authorise the app again and "
                                  f"save the new token. {message}", code="invalid_credentials", status=status)
        if code in RATE_CODES:
            # Weibo's limits are hourly and it sends no Retry-After: try again when the next hour starts.
            wait = http.retry_after_seconds(response.headers.get("Retry-After"))
            return TransientError(message, code=f"weibo_{code}", status=status,
                                  retry_after=wait if wait is not None else max(60.0, 3600 - time.time() % 3600))
        if code in BUSY_CODES:
            return TransientError(message, code=f"weibo_{code}", status=status)
        if code in (20019, 20111):  # the same text again
            message += " An earlier attempt may already have posted it: check the account before replaying."
        return PermanentError(message, code=f"weibo_{code}", status=status)

    def _picture(self, post: Post) -> tuple[dict | None, str]:
        """The cover as the ``pic`` part, or a note on why the post goes without it (a picture Weibo would refuse
        should not cost the post)."""
        cover = post.cover
        if cover is None:
            return None, ""
        if cover.content_type in PIC_TYPES and cover.size < PIC_MAX_BYTES:
            try:
                data = cover.read()
            except OSError:
                return None, "Posted without the cover: its file could not be read."
            if data and len(data) < PIC_MAX_BYTES:
                return {"pic": (cover.name.rsplit("/", 1)[-1], data, cover.content_type)}, ""
        return None, "Posted without the cover: Weibo takes JPEG, PNG or GIF pictures under 5 MB."

    def verify(self) -> str:
        body, _ = self._call("GET", "/2/account/get_uid.json", params={"access_token": self._token()})
        return f"Weibo account {body.get('uid', '?')}"

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        form = {"access_token": self._token(), "status": self.status_text(post)}
        if self.options.get("rip"):
            # The share API asks apps to report the posting user's real IP; a channel may set one in its options.
            form["rip"] = self.options["rip"]
        files, note = self._picture(post)
        # With a file, requests sends multipart/form-data, as Weibo requires for pic; otherwise a plain form.
        try:
            body, status = self._call("POST", "/2/statuses/share.json", data=form, files=files)
        except PermanentError as exc:
            if exc.code != f"weibo_{POSTED_SLOWLY}":
                raise
            # Posted, without its id: recorded as published (sending it again would post it twice); withdrawing it
            # asks staff to delete it by hand (``withdraw``).
            return Receipt(status_code=exc.status, note=(
                "Weibo took the post but answered before showing it, without its id: it appears on the account "
                "within a few minutes. Withdrawing it will ask for it to be deleted by hand."))
        status_id = str(body.get("idstr") or body.get("id") or "")
        if not status_id:
            raise PermanentError("Weibo answered without the new post's id.", code="weibo_bad_answer")
        user = body.get("user") or {}
        uid = str(user.get("idstr") or user.get("id") or "")
        url = f"https://weibo.com/{uid}/{status_id}" if uid else f"https://m.weibo.cn/status/{status_id}"
        return Receipt(external_id=status_id, external_url=url, status_code=status, note=note,
                       data={"weibo_uid": uid} if uid else {})

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        """Weibo has no way to edit a post, and deleting and posting again would lose its reposts, comments and
        likes and notify followers twice. So a new version is not pushed: the live post (whose link always opens the
        item's current page) stays, and the receipt says so."""
        return Receipt(external_id=current.external_id, external_url=current.external_url,
                       note="Weibo posts cannot be edited: the post stays as it is; its link opens the new version.")

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        if not current.external_id:
            # Weibo never named the post (20032), or a push that timed out may have posted it: only staff can find
            # it on the account and delete it.
            return Receipt(pending=True, data={"manual": True})
        try:
            _, status = self._call("POST", "/2/statuses/destroy.json",
                                   data={"access_token": self._token(), "id": current.external_id})
        except PermanentError as exc:
            if exc.code != f"weibo_{GONE}":
                raise
            return Receipt(external_id=current.external_id, status_code=exc.status,
                           note="The post was already gone from Weibo.")
        return Receipt(external_id=current.external_id, status_code=status)
