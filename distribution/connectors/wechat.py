"""WeChat official accounts (公众号 / 服务号): articles through the draft box and the publishing API.

A post becomes one article in three calls, then a poll, as WeChat documents them
(https://developers.weixin.qq.com/doc/service/api/):

1. ``POST /cgi-bin/material/add_material?type=image`` (multipart field ``media``) stores the cover as permanent
   image material; its ``media_id`` is the article's ``thumb_media_id`` (material/permanent/api_addmaterial);
2. ``POST /cgi-bin/draft/add`` saves the article as a draft and returns the draft's ``media_id``
   (draftbox/draftmanage/api_draft_add);
3. ``POST /cgi-bin/freepublish/submit`` submits the draft and returns ``publish_id`` and ``msg_data_id``
   (public/api_freepublish_submit). Publishing is asynchronous (original-content check, review), so the receipt is
   ``pending``;
4. ``POST /cgi-bin/freepublish/get`` polls the job (public/api_freepublish_get): ``publish_status`` 0 names the
   ``article_id`` and the article's permanent URL, 1 is still publishing, 2 to 6 are failures.

Withdrawing is ``POST /cgi-bin/freepublish/delete`` (public/api_freepublishdelete). Reads and shares come from the
"published content" statistics ``/datacube/getarticleread`` and ``/datacube/getarticleshare``
(wedata/news/api_getarticleread, api_getarticleshare): WeChat marks the older ``getarticlesummary`` and
``getarticletotal`` as no longer maintained, and they only ever covered mass-sent (群发) articles, not published ones.

Every call carries an ``access_token`` from ``POST /cgi-bin/stable_token`` (base/api_getstableaccesstoken). Unlike
``GET /cgi-bin/token``, each call of which replaces the account's token (the old one lasts five more minutes), the
stable token is shared: every caller gets the current one, so the account's other tools (its menu, auto-replies, a
CRM) keep theirs. Only ``force_refresh`` replaces it, for every caller at once and at most 20 times a day, so it is
asked for only when WeChat refuses the token it hands out (see ``_renewed_token``). WeChat answers errors with HTTP
200 and ``{"errcode", "errmsg"}``; ``ERRORS`` says what each code means for a delivery.

``freepublish/submit`` starts a publication WeChat finishes on its own; its ``publish_id`` is remembered per delivery
(in the cache, as the cover and the draft are), so a delivery whose submission was made but never recorded (the
database dropped before the worker could write it) is polled when it is tried again, not published a second time.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache

from .. import http
from .base import (
    Connector,
    CredentialField,
    Limits,
    PermanentError,
    Post,
    PublicationState,
    PublishFailed,
    Receipt,
    StatRow,
    TransientError,
)

log = logging.getLogger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")  # WeChat's quotas reset and its statistics are dated in Beijing time
TITLE_CHARS = 32
AUTHOR_CHARS = 16
DIGEST_CHARS = 128
CONTENT_CHARS = 20_000  # "必须少于2万字符": the content must stay below this
CONTENT_BYTES = 1024 * 1024  # "小于1M"
SOURCE_URL_BYTES = 1024
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # permanent image material
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp"}
WECHAT_IMAGE_HOST = "mmbiz.qpic.cn"  # images elsewhere are filtered out of an article's content by WeChat
STATS_SINCE = date(2025, 11, 1)  # the published-content statistics hold nothing earlier
TOKEN_MARGIN = 300  # seconds before expiry at which a cached token is no longer handed out
STEP_TTL = 7 * 24 * 3600

# What an errcode means for a delivery. TOKEN: the access token was refused, fetch a new one and retry once;
# CREDENTIALS: the AppID/AppSecret (or this server's IP) are wrong; TRANSIENT: try again later; anything else,
# listed or not, is permanent and keeps WeChat's own errmsg.
TOKEN, CREDENTIALS, TRANSIENT, PERMANENT = "token", "credentials", "transient", "permanent"
ERRORS: dict[int, tuple[str, str]] = {
    40001: (TOKEN, "WeChat refused the access token."),
    40014: (TOKEN, "WeChat refused the access token."),
    42001: (TOKEN, "The access token expired."),
    40002: (CREDENTIALS, "WeChat refused the grant type."),
    40013: (CREDENTIALS, "The AppID is not valid."),
    40125: (CREDENTIALS, "The AppSecret is not valid."),
    40164: (CREDENTIALS, "This server's IP address is not on the account's IP whitelist (公众平台 > 开发 > 基本配置)."),
    40243: (CREDENTIALS, "The AppSecret is frozen: unfreeze it on the official account platform."),
    41002: (CREDENTIALS, "The AppID is missing."),
    41004: (CREDENTIALS, "The AppSecret is missing."),
    -1: (TRANSIENT, "WeChat is busy."),
    45009: (TRANSIENT, "The account has used up its daily API quota."),
    45011: (TRANSIENT, "The account calls the API too often (per-minute quota)."),
    40007: (PERMANENT, "WeChat does not know this media id (was the material deleted?)."),
    40009: (PERMANENT, "The cover image is larger than WeChat accepts."),
    40113: (PERMANENT, "WeChat does not accept this file type for the cover."),
    40137: (PERMANENT, "WeChat does not support this image format."),
    40033: (PERMANENT, "WeChat refused \\uXXXX escapes in the request."),
    44003: (PERMANENT, "The article has no content."),
    45002: (PERMANENT, "The article body is longer than WeChat allows."),
    45003: (PERMANENT, "The title is longer than WeChat allows."),
    45004: (PERMANENT, "The summary is longer than WeChat allows."),
    45005: (PERMANENT, "The link is longer than WeChat allows."),
    47001: (PERMANENT, "WeChat could not parse the request."),
    48001: (PERMANENT, "The account may not use this API: publishing needs a verified (认证) account."),
    53503: (PERMANENT, "The draft did not pass WeChat's publishing check."),
    53504: (PERMANENT, "WeChat wants this draft published from the official account platform."),
    53505: (PERMANENT, "WeChat wants the draft saved by hand on the official account platform before it is published."),
    61500: (PERMANENT, "WeChat refused the date format."),
    61501: (PERMANENT, "WeChat refused the date range."),
}
RETRY_AFTER = {-1: 10.0, 45011: 60.0}  # 45009 waits for the daily reset instead
# ``freepublish/delete`` is sent an article id and index 1 only, so "invalid argument" answers an article WeChat does
# not have (any more): one an editor deleted on the official account platform, say.
ARTICLE_GONE = 47003

PUBLISH_FAILURES = {
    2: "WeChat refused the article's claim to be original content (原创失败).",
    3: "WeChat failed to publish the article (常规失败).",
    4: "The article did not pass WeChat's review (平台审核不通过).",
    5: "The article was published, then deleted on WeChat (成功后用户删除所有文章).",
    6: "The article was published, then banned by WeChat (成功后系统封禁所有文章).",
}
KEPT = ("thumb_media_id", "draft_media_id", "publish_id", "msg_data_id")

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)


class _TokenRejected(Exception):
    def __init__(self, errcode: int, message: str):
        super().__init__(message)
        self.errcode = errcode


def _quietly(operation, *args, **kwargs) -> None:
    """A cache write made after WeChat did what was asked: the cache being unreachable costs at most a repeated
    step later, so it must not turn what WeChat accepted into a failure."""
    try:
        operation(*args, **kwargs)
    except Exception:  # any cache backend's error
        log.warning("the cache could not be written after a WeChat call", exc_info=True)


def json_body(payload) -> bytes:
    """WeChat shows ``\\uXXXX`` escapes literally (and refuses some with 40033): send the characters as UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def wechat_content(body: str) -> tuple[str, int]:
    """The article body WeChat will keep: images not hosted by WeChat are removed (WeChat would filter them out and
    they count against the size limit). Returns the body and how many images were removed."""
    dropped = 0

    def keep(match: re.Match) -> str:
        nonlocal dropped
        src = _SRC.search(match.group(0))
        url = next((group for group in src.groups() if group is not None), "") if src else ""
        if urlsplit(html.unescape(url).strip()).hostname == WECHAT_IMAGE_HOST:
            return match.group(0)
        dropped += 1
        return ""

    return _IMG.sub(keep, body), dropped


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _seconds_to_quota_reset() -> float:
    now = datetime.now(CHINA)
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=CHINA)
    return max(60.0, (midnight - now).total_seconds())


def _error(errcode: int, errmsg: str, *, issuing: bool = False) -> Exception:
    kind, message = ERRORS.get(errcode, (PERMANENT, "WeChat refused the request."))
    if kind == TOKEN and issuing:  # asking for a token, 40001 means the AppSecret is wrong
        kind, message = CREDENTIALS, "The AppSecret is not valid."
    detail = f"{message} (WeChat {errcode}: {errmsg[:200]})" if errmsg else f"{message} (WeChat {errcode})"
    if kind == TOKEN:
        return _TokenRejected(errcode, detail)
    if kind == CREDENTIALS:
        return PermanentError(detail, code="invalid_credentials")
    if kind == TRANSIENT:
        retry_after = _seconds_to_quota_reset() if errcode == 45009 else RETRY_AFTER.get(errcode)
        return TransientError(detail, code=f"wechat_{errcode}", retry_after=retry_after)
    return PermanentError(detail, code=f"wechat_{errcode}")


def _answer(response, *, issuing: bool = False) -> dict:
    http.raise_for_status(response, what="WeChat")
    try:
        answer = json.loads(response.content)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TransientError("WeChat answered with something other than a JSON object.", code="wechat_unreadable",
                             status=response.status_code)
    try:
        errcode = int(answer.get("errcode") or 0)
    except (TypeError, ValueError):
        errcode = -1
    if errcode:
        raise _error(errcode, str(answer.get("errmsg") or ""), issuing=issuing)
    return answer


def _field(answer: dict, name: str) -> str:
    value = answer.get(name)
    if value in (None, ""):
        raise TransientError(f"WeChat's answer has no {name}.", code="wechat_unreadable")
    return str(value)


class WeChatConnector(Connector):
    """A WeChat official account, reached with its AppID and AppSecret (the account must be verified to publish)."""

    kind = "wechat"
    limits = Limits(title_chars=TITLE_CHARS, body_chars=CONTENT_CHARS - 1, cover_required=True,
                    cover_max_bytes=IMAGE_MAX_BYTES, cover_types=tuple(IMAGE_TYPES))
    credential_fields = (CredentialField("appid", "AppID", secret=False),
                         CredentialField("appsecret", "AppSecret"))
    # A publish: a token, a poll of a submission made before, the cover, the draft and the submission, and one
    # refused token replaced (a forced refresh included) and the call retried.
    calls_per_push = 8

    # -- access token ------------------------------------------------------------------------------------------
    @property
    def _appid(self) -> str:
        return str(self.credentials.get("appid") or "").strip()

    @property
    def _secret(self) -> str:
        return str(self.credentials.get("appsecret") or "").strip()

    def _token_key(self) -> str:
        # Keyed by the secret too: AppIDs are public, and a channel with someone else's AppID and a wrong secret
        # must not be handed the token that the right secret obtained.
        digest = hashlib.sha256(f"{self._appid}\n{self._secret}".encode()).hexdigest()[:32]
        return f"wechat:token:{self._appid}:{digest}"

    def _fetch_token(self, *, force_refresh: bool = False) -> tuple[str, int]:
        if not self._appid or not self._secret:
            raise PermanentError("The channel needs the account's AppID and AppSecret.", code="invalid_credentials")
        response = http.request("POST", self._url("/cgi-bin/stable_token"), data=json_body({
            "grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
            "force_refresh": force_refresh}), headers={"Content-Type": "application/json; charset=utf-8"})
        answer = _answer(response, issuing=True)
        token = _field(answer, "access_token")
        try:
            expires_in = int(answer.get("expires_in") or 7200)
        except (TypeError, ValueError):
            expires_in = 7200
        cache.set(self._token_key(), token, timeout=max(expires_in - TOKEN_MARGIN, expires_in // 2, 1))
        return token, expires_in

    def _token(self) -> str:
        return cache.get(self._token_key()) or self._fetch_token()[0]

    def _renewed_token(self, refused: str) -> str:
        """A token to use instead of one WeChat refused: the one another worker cached meanwhile, else the current
        stable token (another caller's forced refresh replaced ours, or it expired); only when WeChat hands out the
        very token it refused is it forced to issue a new one, which replaces the token for every other caller."""
        cached = cache.get(self._token_key())
        if cached and cached != refused:
            return cached
        token = self._fetch_token()[0]
        return token if token != refused else self._fetch_token(force_refresh=True)[0]

    def _forget_token(self, token: str) -> None:
        # Only the token that failed: another worker may already have cached a fresh one.
        key = self._token_key()
        if cache.get(key) == token:
            cache.delete(key)

    # -- calls -------------------------------------------------------------------------------------------------
    @staticmethod
    def _url(path: str) -> str:
        return settings.WECHAT_API_BASE.rstrip("/") + path

    def _send(self, method: str, path: str, token: str, *, json=None, files=None, params=None) -> dict:
        kwargs: dict = {"params": {"access_token": token, **(params or {})}}
        if json is not None:
            kwargs["data"] = json_body(json)
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        if files is not None:
            kwargs["files"] = files
        return _answer(http.request(method, self._url(path), **kwargs))

    def _call(self, method: str, path: str, *, json=None, files=None, params=None) -> dict:
        """One API call with the cached token; a refused token is replaced and the call retried once."""
        token = self._token()
        try:
            return self._send(method, path, token, json=json, files=files, params=params)
        except _TokenRejected:
            token = self._renewed_token(token)
        try:
            return self._send(method, path, token, json=json, files=files, params=params)
        except _TokenRejected as exc:
            self._forget_token(token)
            raise TransientError(f"WeChat refused a freshly issued access token: {exc}",
                                 code=f"wechat_{exc.errcode}") from None

    def _step_key(self, delivery_id: str, step: str, fingerprint: str = "") -> str:
        return "wechat:step:" + hashlib.sha256(
            f"{self._appid}\n{delivery_id}\n{step}\n{fingerprint}".encode()).hexdigest()

    def _once(self, delivery_id: str, step: str, fingerprint: str, make) -> str:
        """The result of a step already done for this delivery with the same input, else ``make()``: a retry after
        a later step failed must not upload the cover or save the draft a second time."""
        key = self._step_key(delivery_id, step, fingerprint)
        value = cache.get(key)
        if value is None:
            value = make()
            _quietly(cache.set, key, value, timeout=STEP_TTL)
        return value

    def _forget_step(self, delivery_id: str, step: str, fingerprint: str = "") -> None:
        _quietly(cache.delete, self._step_key(delivery_id, step, fingerprint))

    # -- checks ------------------------------------------------------------------------------------------------
    def _author(self) -> str:
        return str(self.options.get("author") or "").strip()

    def check(self, post: Post) -> None:
        """The base checks on the content WeChat would keep, plus its size in bytes, the author and the link."""
        content, _ = wechat_content(post.html)
        super().check(replace(post, html=content))
        if len(content.encode("utf-8")) >= CONTENT_BYTES:
            raise PermanentError(f"The body is {len(content.encode('utf-8'))} bytes; WeChat allows less than 1 MB.",
                                 code="too_long")
        if len(self._author()) > AUTHOR_CHARS:
            raise PermanentError(f"The channel's author has {len(self._author())} characters; WeChat allows "
                                 f"{AUTHOR_CHARS}.", code="too_long")
        if len(post.link.encode("utf-8")) > SOURCE_URL_BYTES:
            raise PermanentError(f"The item's link is longer than WeChat's {SOURCE_URL_BYTES} bytes.",
                                 code="too_long")

    # -- operations --------------------------------------------------------------------------------------------
    def verify(self) -> str:
        _, expires_in = self._fetch_token()
        return f"WeChat issued an access token for {self._appid} (valid for {expires_in} s)."

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        self.check(post)
        cover = post.cover.read()
        if not cover:
            raise PermanentError("The cover image is empty.", code="cover_missing")
        if len(cover) > IMAGE_MAX_BYTES:
            raise PermanentError(f"The cover is {len(cover)} bytes; WeChat allows {IMAGE_MAX_BYTES}.",
                                 code="cover_too_large")
        content_type = post.cover.content_type
        submitted = self._submitted(delivery_id)
        if submitted is not None:
            return submitted
        thumb = self._once(delivery_id, "thumb", hashlib.sha256(cover).hexdigest(), lambda: _field(self._call(
            "POST", "/cgi-bin/material/add_material", params={"type": "image"},
            files={"media": (f"cover.{IMAGE_TYPES[content_type]}", cover, content_type)}), "media_id"))
        content, dropped = wechat_content(post.html)
        article = {
            "article_type": "news", "title": post.title, "author": self._author(),
            "digest": _trim(post.summary, DIGEST_CHARS), "content": content, "content_source_url": post.link,
            "thumb_media_id": thumb, "need_open_comment": int(bool(self.options.get("need_open_comment"))),
            "only_fans_can_comment": int(bool(self.options.get("only_fans_can_comment"))),
        }
        fingerprint = hashlib.sha256(json_body(article)).hexdigest()
        draft = self._once(delivery_id, "draft", fingerprint, lambda: _field(self._call(
            "POST", "/cgi-bin/draft/add", json={"articles": [article]}), "media_id"))
        answer = self._call("POST", "/cgi-bin/freepublish/submit", json={"media_id": draft})
        publish_id = _field(answer, "publish_id")
        note = (f"{dropped} image(s) not hosted by WeChat were left out of the article." if dropped else "")
        data = {"thumb_media_id": thumb, "draft_media_id": draft, "publish_id": publish_id,
                "msg_data_id": str(answer.get("msg_data_id") or "")}
        # From here on WeChat publishes the article whatever happens to this worker: remember that it did, and
        # forget the draft, which publishing consumed (a delivery published anew needs a new one). Neither may turn
        # the submission into a failure.
        _quietly(cache.set, self._step_key(delivery_id, "submitted"), data, timeout=STEP_TTL)
        self._forget_step(delivery_id, "draft", fingerprint)
        return Receipt(external_id=publish_id, pending=True, note=note, data=data)

    def _submitted(self, delivery_id: str) -> Receipt | None:
        """The submission this delivery made before, if WeChat is publishing it or has published it: the delivery
        was tried again without its submission having been recorded. One whose job failed is forgotten, and the
        article is published anew."""
        data = cache.get(self._step_key(delivery_id, "submitted"))
        if not isinstance(data, dict) or not data.get("publish_id"):
            return None
        answer = self._call("POST", "/cgi-bin/freepublish/get", json={"publish_id": data["publish_id"]})
        try:
            status = int(answer.get("publish_status"))
        except (TypeError, ValueError):
            status = None
        if status in PUBLISH_FAILURES:
            self._forget_step(delivery_id, "submitted")
            return None
        return Receipt(external_id=str(data["publish_id"]), pending=True, data=dict(data),
                       note="WeChat already had this article: it was submitted before, without being recorded.")

    def confirm(self, pending: Receipt) -> Receipt:
        publish_id = str(pending.data.get("publish_id") or pending.external_id)
        answer = self._call("POST", "/cgi-bin/freepublish/get", json={"publish_id": publish_id})
        try:
            status = int(answer.get("publish_status"))
        except (TypeError, ValueError):
            status = None
        if status in PUBLISH_FAILURES:
            failed = answer.get("fail_idx") or []
            raise PublishFailed(PUBLISH_FAILURES[status] + (f" Failed articles: {failed}." if failed else ""),
                                code=f"wechat_publish_{status}")
        if status != 0:  # 1: still publishing; an unknown status is polled again rather than guessed at
            return Receipt(external_id=publish_id, pending=True,
                           data={k: v for k, v in pending.data.items() if k != "polls"},
                           note="WeChat is still publishing the article." if status == 1
                           else f"WeChat reports publishing status {answer.get('publish_status')!r}.")
        article_id = _field(answer, "article_id")
        items = (answer.get("article_detail") or {}).get("item") or []
        url = str(items[0].get("article_url") or "") if items and isinstance(items[0], dict) else ""
        note = ""
        replaced = str(pending.data.get("replaces_article_id") or "")
        if replaced and replaced != article_id:
            try:
                if not self._delete(replaced):
                    note = f"The previous version (article {replaced}) was already gone from WeChat."
            except PermanentError as exc:  # the new version is live; staff can remove the old one by hand
                note = f"The previous version (article {replaced}) is still on WeChat: {exc.message}"
        data = {k: pending.data[k] for k in KEPT if k in pending.data}
        return Receipt(external_id=article_id, external_url=url, note=note,
                       data={**data, "article_id": article_id, "article_url": url})

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        """Publish the new version as a new article; the old one is deleted once ``confirm`` sees it published.

        WeChat has no way to edit a published article: publishing consumes the draft, and ``draft/update`` only
        edits drafts. So the new version is published as a new article and the old article deleted. The deletion
        waits for the new article to be published because publishing is asynchronous and can still fail (review,
        original-content check): deleting first would leave the item with nothing on the account.
        """
        receipt = self.publish(post, delivery_id=delivery_id)
        replaced = str(current.data.get("article_id") or current.external_id)
        if replaced:
            receipt.data["replaces_article_id"] = replaced
        return receipt

    def _delete(self, article_id: str) -> bool:
        """Delete a published article; False where WeChat no longer has it (what deleting would have done)."""
        try:
            self._call("POST", "/cgi-bin/freepublish/delete", json={"article_id": article_id, "index": 1})
        except PermanentError as exc:
            if exc.code != f"wechat_{ARTICLE_GONE}":
                raise
            return False
        return True

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        article_id = str(current.data.get("article_id") or current.external_id)
        if not article_id:
            raise PermanentError("WeChat never named this article, so it cannot be deleted.", code="not_found")
        if not self._delete(article_id):
            return Receipt(external_id=article_id, note="The article was already gone from WeChat.")
        return Receipt(external_id=article_id)

    def stats(self, publications: list[PublicationState], *, day: date) -> list[StatRow] | None:
        """Readers (``read_user``) and sharers (``share_user``) of this channel's articles on ``day``.

        The published-content statistics name each article by ``<msg_data_id>_<index>``; the ``msg_data_id``
        ``freepublish/submit`` returned is kept with the publication, so the numbers are this channel's own. If no
        publication has one, the account's totals are used. WeChat only has days from 2025-11-01 to yesterday.
        """
        if day < STATS_SINCE or day >= datetime.now(CHINA).date():
            return None
        ours = {str(p.data["msg_data_id"]) for p in publications if p.data.get("msg_data_id")}
        span = {"begin_date": day.isoformat(), "end_date": day.isoformat()}
        reads = self._per_article("/datacube/getarticleread", span, "read_user", ours)
        shares = self._per_article("/datacube/getarticleshare", span, "share_user", ours)
        return [StatRow(day=day, impressions=reads, engagements=shares)]

    def _per_article(self, path: str, span: dict, field: str, ours: set[str]) -> int:
        total = 0
        for row in self._call("POST", path, json=span).get("list") or []:
            if not isinstance(row, dict):
                continue
            if ours and str(row.get("msgid") or "").rsplit("_", 1)[0] not in ours:
                continue
            value = (row.get("detail") or {}).get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                total += value
        return total

