"""A local stand-in for the parts of Weibo's open API that the Weibo connector uses, in Weibo's documented formats.

API (https://open.weibo.com/wiki/微博API), authenticated with an ``access_token`` parameter:

- ``POST /2/statuses/share.json``: ``status`` (at most 140 units, counted as the Weibo clients count; must contain a
  link, on ``secure_domains`` when those are set), optional ``pic`` (JPEG, PNG or GIF under 5 MB, which makes the
  request ``multipart/form-data``). The same text twice is refused as repeated content.
- ``POST /2/statuses/destroy.json`` (``id``)
- ``GET /2/account/get_uid.json``

Errors have Weibo's shape ``{"error", "error_code", "request"}``. The stand-in answers token errors and rate limits
with HTTP 403 and other errors with 400 (the connector goes by ``error_code``, whatever the status).
Test controls (Python methods): ``expire(token)`` (the token answers 21327 expired_token from then on),
``rate_limit(k)`` (the next k calls answer 10023 with HTTP 403), ``busy(k)`` (the next k calls answer 10009),
``posting_limit(k)`` (the next k posts answer 20016 "out of limit", posting too often) and ``slow(k)`` (the next k
posts are made but answered with 20032 "update success, while server slow now", without the post).
Every request is recorded in ``requests``.

Usage::

    with WeiboServer() as weibo:
        ...  # point WEIBO_API_BASE at weibo.url; weibo.token is a valid access token
"""

from __future__ import annotations

import email
import email.policy
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .stand_in import StandIn, StandInHandler

PIC_MAX_BYTES = 5 * 1024 * 1024
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_LINK = re.compile(r"https?://[a-zA-Z0-9.:-]+[-A-Za-z0-9_$.+!*()/,:;@&=?~#%]*")


class WeiboError(Exception):
    def __init__(self, code: int, error: str, status: int = 400):
        super().__init__(error)
        self.code, self.error, self.status = code, error, status


@dataclass
class RecordedRequest:
    method: str
    path: str
    content_type: str
    params: dict
    files: dict = field(default_factory=dict)  # name -> (filename, content type, bytes)
    status: int = 0


def weibo_units(text: str) -> int:
    """Length as the Weibo web client's counter computes it: bytes (a character above U+00FF is two), each link
    worth 20 bytes up to 140 bytes long, all halved and rounded up."""
    def size(s: str) -> int:
        return len(s) + sum(1 for c in s if ord(c) > 0xFF)

    links = 0
    for link in _LINK.findall(text):
        n = size(link)
        links += 20 if n <= 140 else n - 120
        text = text.replace(link, "", 1)
    return math.ceil((links + size(text)) / 2)


def _multipart(content_type: str, body: bytes) -> tuple[dict, dict]:
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body,
                                       policy=email.policy.HTTP)
    params, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), part.get_content_type(), payload)
        else:
            params[name] = payload.decode()
    return params, files


class _Handler(StandInHandler):
    server_version = "weibo-stand-in"

    def handle_request(self, method: str) -> None:
        stand_in: WeiboServer = self.stand_in
        split = urlsplit(self.path)
        body = self.read_body()
        content_type = self.headers.get("Content-Type", "")
        params, files = dict(parse_qsl(split.query, keep_blank_values=True)), {}
        if content_type.startswith("multipart/form-data"):
            form, files = _multipart(content_type, body)
            params.update(form)
        elif body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        record = RecordedRequest(method=method, path=split.path, content_type=content_type, params=params,
                                 files=files)
        with stand_in._lock:
            stand_in.requests.append(record)
            try:
                status, answer = 200, stand_in.handle(method, split.path, params, files)
            except WeiboError as exc:
                status, answer = exc.status, {"error": exc.error, "error_code": exc.code, "request": split.path}
            record.status = status
        self.reply(status, json.dumps(answer, ensure_ascii=False).encode(), "application/json;charset=UTF-8")


class WeiboServer(StandIn):
    """The stand-in's state and its HTTP server on 127.0.0.1, on a free port, in a background thread."""

    handler, name = _Handler, "weibo-stand-in"

    def __init__(self, *, uid: str = "5678901234", secure_domains: tuple[str, ...] = ()):
        self.uid, self.secure_domains = uid, secure_domains
        self.token = f"2.00{secrets.token_hex(14)}"
        self.tokens: dict[str, str] = {self.token: "valid"}
        self.statuses: dict[str, dict] = {}
        self.requests: list[RecordedRequest] = []
        self._rate_limited = self._busy = self._posting_limited = self._slow = 0
        self._lock = threading.RLock()

    # --- controls ----------------------------------------------------------------------------------------------

    def expire(self, token: str | None = None) -> None:
        self.tokens[token or self.token] = "expired"

    def rate_limit(self, calls: int = 1) -> None:
        self._rate_limited = calls

    def busy(self, calls: int = 1) -> None:
        self._busy = calls

    def posting_limit(self, posts: int = 1) -> None:
        self._posting_limited = posts

    def slow(self, posts: int = 1) -> None:
        self._slow = posts

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- API ---------------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict, files: dict) -> dict:
        if self._rate_limited:
            self._rate_limited -= 1
            raise WeiboError(10023, "User requests out of rate limit!", status=403)
        if self._busy:
            self._busy -= 1
            raise WeiboError(10009, "Too many pending tasks, system is busy!")
        routes = {("POST", "/2/statuses/share.json"): self._share, ("POST", "/2/statuses/destroy.json"): self._destroy,
                  ("GET", "/2/account/get_uid.json"): self._uid}
        if (method, path) not in routes:
            raise WeiboError(10020 if method == "GET" or path.endswith(".json") else 10021,
                             "Request Api not found!", status=404)
        self._authenticate(params.get("access_token", ""))
        return routes[(method, path)](params, files)

    def _authenticate(self, token: str) -> None:
        state = self.tokens.get(token)
        if not token:
            raise WeiboError(10006, "source paramter(appkey) is missing", status=403)
        if state == "expired":
            raise WeiboError(21327, "expired_token", status=403)
        if state != "valid":
            raise WeiboError(21332, "invalid_access_token", status=403)

    def _uid(self, params: dict, files: dict) -> dict:
        return {"uid": int(self.uid)}

    def _share(self, params: dict, files: dict) -> dict:
        text = params.get("status", "")
        if not text:
            raise WeiboError(10016, "Miss required parameter (status), see doc for more info.")
        if weibo_units(text) > 140:
            raise WeiboError(20012, "Text too long, please input text less than 140 characters!")
        links = [urlsplit(link).hostname for link in _LINK.findall(text)]
        if not links or (self.secure_domains and not any(host in self.secure_domains for host in links)):
            raise WeiboError(10017, "Parameter (status)'s value invalid, expect (a link on the app's secure "
                                    f"domains), but get ({text}), see doc for more info.")
        if re.search(r"#[^#]+#", text):
            raise WeiboError(10017, "Parameter (status)'s value invalid, expect (no topic), see doc for more info.")
        if "pic" in params:
            raise WeiboError(20007, "Does multipart has image?")  # a pic sent as a plain form field
        pic = files.get("pic")
        if pic is not None:
            if len(pic[2]) >= PIC_MAX_BYTES:
                raise WeiboError(20006, "Image size too large.")
            if not pic[2].startswith(_MAGIC):
                raise WeiboError(20007, "Does multipart has image?")
        if any(s["text"] == text for s in self.statuses.values()):
            raise WeiboError(20019, "Repeat content!")
        if self._posting_limited:
            self._posting_limited -= 1
            raise WeiboError(20016, "Out of limit!")
        mid = str(4_900_000_000_000_000 + secrets.randbelow(10**14))
        status = {
            "created_at": time.strftime("%a %b %d %H:%M:%S +0800 %Y"), "id": int(mid), "mid": mid, "idstr": mid,
            "text": text, "source_allowclick": 0, "favorited": False, "truncated": False,
            "user": {"id": int(self.uid), "idstr": self.uid, "screen_name": "zhiku_test"},
            "reposts_count": 0, "comments_count": 0, "attitudes_count": 0,
        }
        if pic is not None:
            status["pic_bytes"] = len(pic[2])
            status["original_pic"] = f"https://wx1.sinaimg.cn/large/{secrets.token_hex(8)}.jpg"
        self.statuses[mid] = status
        if self._slow:
            self._slow -= 1
            raise WeiboError(20032, "Update success, while server slow now, please wait 1-2 minutes!")
        return {k: v for k, v in status.items() if k != "pic_bytes"}

    def _destroy(self, params: dict, files: dict) -> dict:
        status = self.statuses.pop(params.get("id", ""), None)
        if status is None:
            raise WeiboError(20101, "target weibo does not exist!")
        return status
