"""A local stand-in for the parts of WeChat's official account API that Zhiku uses, with WeChat's request and
response shapes (https://developers.weixin.qq.com/doc/service/api/):

- ``POST /cgi-bin/stable_token`` ``{"grant_type": "client_credential", "appid", "secret", "force_refresh"}`` ->
  ``{"access_token", "expires_in"}``: the account's current stable token to every caller, the same one until five
  minutes before it expires (then a new one; the old one lasts until it expires); ``force_refresh: true`` replaces it
  at once (the old one is refused from then on), at most 20 times a day and 30 seconds apart (WeChat documents the
  limits, not their error code: the stand-in answers 45009 and 45011, its quota codes);
- ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` -> ``{"access_token", "expires_in"}``, a new
  token on every call, after which the tokens it issued before last ``token_overlap`` seconds (WeChat: 5 minutes).
  The two kinds of token are independent: issuing one leaves the other kind alone. Both answer 40013 for an unknown
  AppID, 40125 for a wrong AppSecret, 40164 when the caller's IP is "not whitelisted";
- ``POST /cgi-bin/material/add_material?access_token=&type=image``, multipart field ``media``
  -> ``{"media_id", "url"}``; 41005 without ``media``, 40113 for a file that is not an image, 40009 when too large;
- ``POST /cgi-bin/draft/add`` ``{"articles": [...]}`` -> ``{"media_id"}``; 40033 for ``\\uXXXX`` escapes in the
  body, 40007 for an unknown ``thumb_media_id``, 45003/45004/45002 for a title/digest/content over the limit;
- ``POST /cgi-bin/freepublish/submit`` ``{"media_id"}`` -> ``{"publish_id", "msg_data_id"}`` (the draft is consumed);
- ``POST /cgi-bin/freepublish/get`` ``{"publish_id"}`` -> ``publish_status`` 1 for ``publish_polls`` polls, then
  ``publish_status`` (0 with ``article_id`` and ``article_detail``; 5 once the article was deleted);
- ``POST /cgi-bin/freepublish/delete`` ``{"article_id", "index"}``;
- ``POST /datacube/getarticleread`` and ``/datacube/getarticleshare`` ``{"begin_date", "end_date"}`` -> the reads
  and shares set with ``set_article_stats``.

Calls without a valid token get 41001 (missing), 40001 (unknown) or 42001 (expired). Errors are HTTP 200 with
``{"errcode", "errmsg"}``, as WeChat sends them. Test controls: ``expire_tokens()`` (the next call with a current
token gets 42001), ``fail(errcode, times=, path=)`` (inject 45009, -1, 40001, ... for the next calls),
``fail_http(status, times=)``, ``block_ip()``, ``delete_material(media_id)``, ``finish_jobs()`` (WeChat publishes a
submitted draft on its own, whether anyone polls or not: every job ends now) and ``live_articles()``. Every request
is recorded in ``requests`` with its raw body.

Usage::

    with WeChatServer() as wechat:
        ...  # point WECHAT_API_BASE at wechat.url; credentials wechat.appid / wechat.secret
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from .stand_in import StandIn, StandInHandler

CHINA = ZoneInfo("Asia/Shanghai")
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF87a": "gif", b"GIF89a": "gif",
               b"BM": "bmp"}
ESCAPE = re.compile(rb"\\u[0-9a-fA-F]{4}")
TOKEN_PATHS = ("/cgi-bin/token", "/cgi-bin/stable_token")
STABLE_RENEWAL = 300  # seconds before expiry from which the stable token's normal mode hands out a new one


class WeChatError(Exception):
    """An error answer: ``{"errcode", "errmsg"}`` with WeChat's ``rid`` suffix."""

    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg

    def body(self) -> dict:
        return {"errcode": self.errcode, "errmsg": f"{self.errmsg} rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}"}


@dataclass
class RecordedRequest:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 200
    errcode: int = 0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)


@dataclass
class _Injected:
    errcode: int
    errmsg: str
    times: int
    path: str | None = None


@dataclass
class _Job:
    draft: dict
    msg_data_id: str
    polls_left: int
    outcome: int
    article_id: str = ""


@dataclass
class _Stats:
    read_user: int = 0
    share_user: int = 0
    sources: list = field(default_factory=list)


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str, str, bytes]]:
    """``name -> (filename, content type, bytes)`` of a multipart/form-data body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.startswith("multipart/form-data") or match is None:
        return {}
    parts = {}
    for chunk in body.split(b"--" + match.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(":", 1) for line in head.decode("utf-8", "replace").split("\r\n") if ":" in line)
        headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            parts[name.group(1)] = (filename.group(1) if filename else "", headers.get("content-type", ""),
                                    data.removesuffix(b"\r\n"))
    return parts


class _Handler(StandInHandler):
    server_version = "wechat-stand-in"

    def handle_request(self, method: str) -> None:
        stand_in: WeChatServer = self.stand_in
        split = urlsplit(self.path)
        record = RecordedRequest(method=method, path=split.path, query=dict(parse_qsl(split.query)),
                                 headers=dict(self.headers.items()), body=self.read_body())
        with stand_in._lock:
            stand_in.requests.append(record)
        status, answer = stand_in.handle(record)
        record.status = status
        if isinstance(answer, str):
            self.reply(status, answer.encode(), "text/html")
        else:
            self.reply(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json; encoding=utf-8")


class WeChatServer(StandIn):
    """The stand-in's state and its HTTP server on 127.0.0.1, on a free port, in a background thread."""

    handler, name = _Handler, "wechat-stand-in"

    def __init__(self, *, appid: str | None = None, secret: str | None = None, expires_in: int = 7200,
                 publish_polls: int = 1, publish_outcome: int = 0, image_max_bytes: int = 10 * 1024 * 1024,
                 token_overlap: float = 300.0):
        self.appid = appid or f"wx{secrets.token_hex(8)}"
        self.secret = secret or secrets.token_hex(16)
        self.expires_in = expires_in
        self.token_overlap = token_overlap  # how long a ``GET /cgi-bin/token`` token lasts once a newer one is issued
        self.stable_token = ""  # the account's current stable token
        self.ordinary_tokens: set[str] = set()  # issued by ``GET /cgi-bin/token``
        self.superseded: dict[str, float] = {}  # ordinary token -> when (monotonic) it stops being accepted
        self.forced_refreshes: list[float] = []  # when (monotonic) ``force_refresh`` replaced the stable token
        self.publish_polls = publish_polls  # how many freepublish/get answers say "publishing" (1) first
        self.publish_outcome = publish_outcome  # the publish_status a job ends with
        self.image_max_bytes = image_max_bytes
        self.ip_blocked = False
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.materials: dict[str, dict] = {}
        self.drafts: dict[str, dict] = {}
        self.jobs: dict[str, _Job] = {}
        self.articles: dict[str, dict] = {}
        self.stats: dict[tuple[str, str], _Stats] = {}
        self.requests: list[RecordedRequest] = []
        self._injected: list[_Injected] = []
        self._http_failures: list[int] = []
        self._ids = iter(range(2247490001, 2247999999))
        self._lock = threading.RLock()

    # --- test controls -----------------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far expires now: the next call with one gets 42001."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def fail(self, errcode: int, *, times: int = 1, path: str | None = None, errmsg: str = "") -> None:
        """The next ``times`` API calls (to ``path`` only, if given) answer ``errcode``."""
        messages = {-1: "system error", 45009: "reach max api daily quota limit",
                    45011: "api minute-quota reach limit  mustslower  retry next minute",
                    40001: "invalid credential, access_token is invalid or not latest"}
        with self._lock:
            self._injected.append(_Injected(errcode, errmsg or messages.get(errcode, "injected error"), times, path))

    def fail_http(self, status: int, *, times: int = 1) -> None:
        with self._lock:
            self._http_failures.extend([status] * times)

    def block_ip(self, blocked: bool = True) -> None:
        self.ip_blocked = blocked

    def delete_material(self, media_id: str) -> None:
        with self._lock:
            self.materials.pop(media_id, None)

    def set_article_stats(self, day: date, msgid: str, *, read_user: int = 0, share_user: int = 0) -> None:
        with self._lock:
            self.stats[(day.isoformat(), msgid)] = _Stats(read_user=read_user, share_user=share_user, sources=[
                {"user_count": read_user, "scene_desc": "全部"}])

    def finish_jobs(self) -> list[dict]:
        """Every submitted job ends now, as WeChat finishes them whether or not anyone polls (a successful one puts
        its article on the account); returns the articles live on the account."""
        with self._lock:
            for publish_id, job in self.jobs.items():
                job.polls_left = 0
                if job.outcome == 0:
                    self._article(publish_id, job)
        return self.live_articles()

    def live_articles(self) -> list[dict]:
        with self._lock:
            return [article for article in self.articles.values() if not article["deleted"]]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- API ---------------------------------------------------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._ids))

    def handle(self, record: RecordedRequest) -> tuple[int, dict | str]:
        with self._lock:
            if self._http_failures:
                return self._http_failures.pop(0), "<html><body>502 Bad Gateway</body></html>"
            try:
                return 200, self._route(record)
            except WeChatError as exc:
                record.errcode = exc.errcode
                return 200, exc.body()

    def _injection(self, path: str) -> None:
        for injected in self._injected:
            if injected.path in (None, path) and (injected.path or path not in TOKEN_PATHS):
                injected.times -= 1
                if injected.times <= 0:
                    self._injected.remove(injected)
                raise WeChatError(injected.errcode, injected.errmsg)

    def _route(self, record: RecordedRequest) -> dict:
        self._injection(record.path)
        if record.path == "/cgi-bin/token":
            if record.method != "GET":
                raise WeChatError(43001, "require GET method")
            return self._token(record.query)
        if record.path == "/cgi-bin/stable_token":
            if record.method != "POST":
                raise WeChatError(43002, "require POST method")
            return self._stable_token(self._json(record))
        routes = {
            "/cgi-bin/material/add_material": self._add_material,
            "/cgi-bin/draft/add": self._draft_add,
            "/cgi-bin/freepublish/submit": self._submit,
            "/cgi-bin/freepublish/get": self._get,
            "/cgi-bin/freepublish/delete": self._delete,
            "/datacube/getarticleread": lambda r: self._datacube(r, "read_user", max_days=30),
            "/datacube/getarticleshare": lambda r: self._datacube(r, "share_user", max_days=1),
        }
        if record.path not in routes:
            raise WeChatError(404, f"invalid url {record.path}")
        if record.method != "POST":
            raise WeChatError(43002, "require POST method")
        self._authenticate(record.query)
        return routes[record.path](record)

    def _credentials(self, given: dict) -> None:
        if given.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        if not given.get("appid"):
            raise WeChatError(41002, "appid missing")
        if not given.get("secret"):
            raise WeChatError(41004, "appsecret missing")
        if given["appid"] != self.appid:
            raise WeChatError(40013, "invalid appid")
        if given["secret"] != self.secret:
            raise WeChatError(40125, "invalid appsecret, view more at http://t.cn/RAEkdVq")
        if self.ip_blocked:
            raise WeChatError(40164, "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist")

    def _issue(self) -> str:
        token = secrets.token_urlsafe(96)
        self.tokens[token] = time.monotonic() + self.expires_in
        return token

    def _token(self, query: dict) -> dict:
        self._credentials(query)
        cutoff = time.monotonic() + self.token_overlap
        for earlier in self.ordinary_tokens:
            self.superseded[earlier] = min(self.superseded.get(earlier, cutoff), cutoff)
        token = self._issue()
        self.ordinary_tokens.add(token)
        return {"access_token": token, "expires_in": self.expires_in}

    def _stable_token(self, data: dict) -> dict:
        self._credentials(data)
        now, current = time.monotonic(), self.stable_token
        if data.get("force_refresh") is True:
            today = [at for at in self.forced_refreshes if at > now - 86400]
            if len(today) >= 20:
                raise WeChatError(45009, "reach max api daily quota limit")
            if today and now - today[-1] < 30:
                raise WeChatError(45011, "api minute-quota reach limit  mustslower  retry next minute")
            self.forced_refreshes.append(now)
            self.tokens.pop(current, None)
        elif current and self.tokens.get(current, 0.0) - now > STABLE_RENEWAL:
            return {"access_token": current, "expires_in": int(self.tokens[current] - now)}
        self.stable_token = self._issue()
        return {"access_token": self.stable_token, "expires_in": self.expires_in}

    def _authenticate(self, query: dict) -> None:
        token = query.get("access_token")
        if not token:
            raise WeChatError(41001, "access_token missing")
        if self.ip_blocked:
            raise WeChatError(40164, "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist")
        if token not in self.tokens or self.superseded.get(token, float("inf")) <= time.monotonic():
            raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
        if self.tokens[token] <= time.monotonic():
            raise WeChatError(42001, "access_token expired")

    @staticmethod
    def _json(record: RecordedRequest) -> dict:
        if ESCAPE.search(record.body):
            raise WeChatError(40033, "invalid charset. please check your request, if include \\uxxxx will create fail!")
        try:
            data = json.loads(record.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WeChatError(47001, "data format error") from None
        if not isinstance(data, dict):
            raise WeChatError(47001, "data format error")
        return data

    def _add_material(self, record: RecordedRequest) -> dict:
        kind = record.query.get("type")
        if kind not in ("image", "voice", "video", "thumb"):
            raise WeChatError(40004, "invalid media type")
        parts = parse_multipart(record.header("Content-Type") or "", record.body)
        if "media" not in parts or not parts["media"][2]:
            raise WeChatError(41005, "media data missing")
        _, _, data = parts["media"]
        fmt = next((fmt for magic, fmt in IMAGE_MAGIC.items() if data.startswith(magic)), None)
        if kind == "image" and fmt is None:
            raise WeChatError(40113, "unsupported file type")
        if kind == "image" and len(data) > self.image_max_bytes:
            raise WeChatError(40009, "invalid image size")
        media_id = secrets.token_urlsafe(48)
        url = f"http://mmbiz.qpic.cn/mmbiz_{fmt}/{secrets.token_urlsafe(24)}/0?wx_fmt={fmt}"
        self.materials[media_id] = {"type": kind, "bytes": data, "filename": parts["media"][0], "url": url}
        return {"media_id": media_id, "url": url, "item": []}

    def _draft_add(self, record: RecordedRequest) -> dict:
        articles = self._json(record).get("articles")
        if not isinstance(articles, list) or not articles or len(articles) > 8:
            raise WeChatError(47003, "argument invalid! data.articles invalid")
        for article in articles:
            if not isinstance(article, dict):
                raise WeChatError(47003, "argument invalid! data.articles[] invalid")
            if not article.get("title"):
                raise WeChatError(40227, "empty title")
            if len(article["title"]) > 32:
                raise WeChatError(45003, "title size out of limit")
            if len(article.get("digest") or "") > 128:
                raise WeChatError(45004, "description size out of limit")
            content = article.get("content") or ""
            if not content:
                raise WeChatError(44003, "empty news data")
            if len(content) >= 20_000 or len(content.encode()) >= 1024 * 1024:
                raise WeChatError(45002, "content size out of limit")
            if article.get("article_type", "news") == "news" and article.get("thumb_media_id") not in self.materials:
                raise WeChatError(40007, "invalid media_id")
        media_id = secrets.token_urlsafe(48)
        self.drafts[media_id] = {"articles": articles}
        return {"media_id": media_id}

    def _submit(self, record: RecordedRequest) -> dict:
        media_id = self._json(record).get("media_id")
        if media_id not in self.drafts:
            raise WeChatError(40007, "invalid media_id")
        publish_id, msg_data_id = self._next_id(), self._next_id()
        self.jobs[publish_id] = _Job(draft=self.drafts.pop(media_id), msg_data_id=msg_data_id,
                                     polls_left=self.publish_polls, outcome=self.publish_outcome)
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": msg_data_id}

    def _get(self, record: RecordedRequest) -> dict:
        publish_id = str(self._json(record).get("publish_id") or "")
        job = self.jobs.get(publish_id)
        if job is None:
            raise WeChatError(47003, "argument invalid! data.publish_id invalid")
        if job.polls_left > 0:
            job.polls_left -= 1
            return {"publish_id": publish_id, "publish_status": 1, "fail_idx": []}
        if job.outcome != 0:
            return {"publish_id": publish_id, "publish_status": job.outcome, "fail_idx": [1]}
        article = self._article(publish_id, job)
        if article["deleted"]:
            return {"publish_id": publish_id, "publish_status": 5, "article_id": job.article_id, "fail_idx": []}
        return {"publish_id": publish_id, "publish_status": 0, "article_id": job.article_id,
                "article_detail": {"count": 1, "item": [{"idx": 1, "article_url": article["url"]}]}, "fail_idx": []}

    def _article(self, publish_id: str, job: _Job) -> dict:
        """The article a successful job put on the account (created when the job ends)."""
        if not job.article_id:
            job.article_id = secrets.token_urlsafe(32)
            self.articles[job.article_id] = {
                "publish_id": publish_id, "msg_data_id": job.msg_data_id, "deleted": False,
                "article": job.draft["articles"][0],
                "url": f"http://mp.weixin.qq.com/s?__biz=MzA{job.msg_data_id}&mid={job.msg_data_id}&idx=1"}
        return self.articles[job.article_id]

    def _delete(self, record: RecordedRequest) -> dict:
        data = self._json(record)
        article = self.articles.get(str(data.get("article_id") or ""))
        if article is None or article["deleted"]:
            raise WeChatError(47003, "argument invalid! data.article_id invalid")
        if data.get("index") not in (None, 0, 1):
            raise WeChatError(40060, "invalid article idx")
        article["deleted"] = True
        return {"errcode": 0, "errmsg": "ok"}

    def _datacube(self, record: RecordedRequest, metric: str, *, max_days: int) -> dict:
        data = self._json(record)
        try:
            begin, end = (date.fromisoformat(str(data.get(k) or "")) for k in ("begin_date", "end_date"))
        except ValueError:
            raise WeChatError(61500, "date format error") from None
        if end < begin or (end - begin).days >= max_days or end >= datetime.now(CHINA).date():
            raise WeChatError(61501, "date range error")
        rows = []
        for (day, msgid), stats in sorted(self.stats.items()):
            if begin.isoformat() <= day <= end.isoformat() and getattr(stats, metric):
                detail = {"read_user": stats.read_user, "read_user_source": stats.sources} if metric == "read_user" \
                    else {"share_user": stats.share_user}
                rows.append({"ref_date": day, "msgid": msgid, "detail": detail})
        return {"list": rows, "is_delay": False}
