"""The connector interface: what every platform Zhiku pushes to implements.

A connector is built for one channel with its decrypted credentials and speaks that platform's documented API. It
never touches the database: the pipeline (``distribution.pipeline``) hands it an adapted ``Post`` and the current
``Publication`` state, and records what it returns. A connector signals failure with exactly two exceptions:

* ``TransientError``: worth trying again later (timeouts, 5xx, 408, 429, a platform's "busy" codes), optionally
  with the delay the platform asked for (``Retry-After``);
* ``PermanentError``: trying again cannot help (bad credentials, content the platform refuses, 4xx); the delivery
  is parked for staff to fix and replay. Its subclass ``PublishFailed`` is for ``confirm``: the platform finished
  an asynchronous publication and it failed, so nothing of it is live and a retry publishes anew.

Anything a platform would reject (too long, missing cover) is checked in ``check(post)`` before the first call, so
that a refused post leaves nothing half-sent on the platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class PushError(Exception):
    """Base of the two failures a connector may raise."""

    def __init__(self, message: str, *, code: str = "", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code  # stable, machine-readable: "invalid_credentials", "too_long", "wechat_45009", ...
        self.status = status  # the HTTP status the platform answered, if any


class TransientError(PushError):
    def __init__(self, message: str, *, code: str = "", status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class PermanentError(PushError):
    pass


class PublishFailed(PermanentError):
    """From ``confirm``: the platform's job for the post is over and nothing of it is live (review refused it, or it
    was deleted or banned). Unlike other errors while confirming, this ends the job: a staff retry publishes the post
    again, where after any other error it polls the same job again."""


@dataclass(frozen=True)
class Media:
    """A file the post refers to: its name in storage, its MIME type, and how to read it."""

    name: str
    content_type: str
    url: str = ""  # a public URL where one exists (feeds' enclosures, covers)
    size: int = 0

    def read(self) -> bytes:
        from django.core.files.storage import storages

        storage = storages["private"] if self.name.startswith("private:") else storages["default"]
        with storage.open(self.name.removeprefix("private:"), "rb") as handle:
            return handle.read()


@dataclass(frozen=True)
class Post:
    """One version of one item adapted for one channel. Paid items carry an excerpt and a paywall link, never their
    paid body; every link in ``html``/``text``/``markdown`` carries the channel's tracking code."""

    item_id: int
    version: int
    kind: str  # the catalog kind: course, article, audio, video, ebook, live
    title: str
    summary: str  # plain text excerpt
    html: str  # sanitised HTML body for the channel (the full text only for free items)
    markdown: str  # the same as Markdown (export packages)
    text: str  # a short plain-text post (microblogs), within the channel's limit, link included
    link: str  # the tracked storefront URL of the item
    is_paid: bool
    price_display: str
    language: str
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    cover: Media | None = None
    enclosure: Media | None = None  # free audio or video for feeds
    published_at: str = ""  # ISO 8601
    content_hash: str = ""


@dataclass
class Receipt:
    """What a platform answered: its id and URL for the post; ``pending`` when it accepted the post but has not
    finished (WeChat publishes asynchronously); ``data`` is kept on the publication for later calls."""

    external_id: str = ""
    external_url: str = ""
    pending: bool = False
    status_code: int | None = None
    data: dict = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PublicationState:
    """What the channel shows of the item now (from the last successful delivery)."""

    item_id: int
    external_id: str
    external_url: str
    version: int
    data: dict


@dataclass(frozen=True)
class StatRow:
    day: date
    impressions: int
    engagements: int = 0


@dataclass(frozen=True)
class Limits:
    """What the platform accepts; ``check`` enforces them before any call."""

    title_chars: int | None = None
    body_chars: int | None = None
    text_chars: int | None = None  # microblog post length, counted as the platform counts
    cover_required: bool = False
    cover_max_bytes: int | None = None
    cover_types: tuple[str, ...] = ()
    allowed_tags: frozenset[str] | None = None  # None: the default sanitiser's set


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = True
    required: bool = True


class Connector:
    """Base class. Subclasses set ``kind`` and ``credential_fields`` and implement what their platform offers.

    ``pushes`` is False for pull channels (feeds) and manual ones (Zhihu): their deliveries are settled without a
    network call (``publish`` still runs and returns the receipt the pipeline records).
    """

    kind: str = ""
    pushes: bool = True
    limits: Limits = Limits()
    credential_fields: tuple[CredentialField, ...] = ()
    needs_endpoint: bool = False  # the channel's endpoint_url is where it delivers
    # The most HTTP calls one publish, update or withdrawal makes (token refreshes included): with the calls' timeouts
    # (``http.CALL_SECONDS``) it bounds how long one push can take, which the pipeline's lease must outlive.
    calls_per_push: int = 1

    def __init__(self, channel, credentials: dict):
        self.channel = channel
        self.credentials = credentials
        self.options = channel.options if isinstance(channel.options, dict) else {}  # ``connector_for`` refuses others

    # -- checks before anything is sent ------------------------------------------------------------------------
    def check(self, post: Post) -> None:
        """Raise ``PermanentError`` (code ``too_long``, ``cover_missing``, ...) if the platform would refuse it."""
        limits = self.limits
        if limits.title_chars and len(post.title) > limits.title_chars:
            raise PermanentError(f"The title has {len(post.title)} characters; {self.kind} allows "
                                 f"{limits.title_chars}.", code="too_long")
        if limits.body_chars and len(post.html) > limits.body_chars:
            raise PermanentError(f"The body has {len(post.html)} characters; {self.kind} allows "
                                 f"{limits.body_chars}.", code="too_long")
        if limits.text_chars and len(post.text) > limits.text_chars:
            raise PermanentError(f"The post has {len(post.text)} characters; {self.kind} allows "
                                 f"{limits.text_chars}.", code="too_long")
        if limits.cover_required and post.cover is None:
            raise PermanentError(f"{self.kind} needs a cover image: add one to the item.", code="cover_missing")
        if post.cover is not None and limits.cover_types and post.cover.content_type not in limits.cover_types:
            raise PermanentError(f"{self.kind} does not accept {post.cover.content_type} covers.",
                                 code="cover_type")
        if post.cover is not None and limits.cover_max_bytes and post.cover.size > limits.cover_max_bytes:
            raise PermanentError(f"The cover is {post.cover.size} bytes; {self.kind} allows "
                                 f"{limits.cover_max_bytes}.", code="cover_too_large")

    # -- the platform's operations ------------------------------------------------------------------------------
    @classmethod
    def credential_errors(cls, credentials: dict[str, str]) -> dict[str, str]:
        """What is wrong with credentials as entered, by field name, before anything is stored or sent (a value of
        the wrong shape would otherwise fail every push); empty when nothing is."""
        return {}

    def verify(self) -> str:
        """Check the credentials with the platform; return a short description of what they reach."""
        raise NotImplementedError

    def publish(self, post: Post, *, delivery_id: str) -> Receipt:
        raise NotImplementedError

    def update(self, post: Post, current: PublicationState, *, delivery_id: str) -> Receipt:
        """Replace the live post with a new version; by default withdraw and publish again."""
        self.withdraw(current, delivery_id=delivery_id)
        return self.publish(post, delivery_id=delivery_id)

    def withdraw(self, current: PublicationState, *, delivery_id: str) -> Receipt:
        raise NotImplementedError

    def confirm(self, pending: Receipt) -> Receipt:
        """Poll an asynchronous publication: the final receipt, or one still ``pending``."""
        return pending

    def stats(self, publications: list[PublicationState], *, day: date) -> list[StatRow] | None:
        """Platform-reported numbers for ``day``, or None where the platform offers none."""
        return None
