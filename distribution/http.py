"""HTTP for connectors: one keep-alive session per process, timeouts, the private-address guard, and the mapping
of platform answers onto ``TransientError`` and ``PermanentError``.

Tenant-supplied URLs (webhook and partner endpoints) must not reach the platform's own network: a host that
resolves to a loopback, private, link-local or otherwise reserved address is refused, unless it lies in
``DISTRIBUTION_ALLOWED_NETWORKS`` (the test suite's receivers on 127.0.0.1). The check runs when the channel is saved
and again before every call, since DNS answers change; and since the connection resolves the name once more (a name
can answer a public address to the check and a private one a moment later), the address each new connection reached
is checked by the same rule before anything is sent on it (``PublicOnlyAdapter``).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .connectors.base import PermanentError, TransientError

_local = threading.local()
TIMEOUT = (5, 20)  # connect, read
CALL_SECONDS = sum(TIMEOUT)  # the longest one call can take before it times out


def _allowed_networks():
    return [ipaddress.ip_network(n, strict=False) for n in settings.DISTRIBUTION_ALLOWED_NETWORKS]


def public_address_check(host: str, address: str) -> None:
    """The rule for tenant-supplied URLs: ``host``'s ``address`` must be public (not loopback, private, link-local,
    multicast or otherwise reserved), unless ``DISTRIBUTION_ALLOWED_NETWORKS`` lists it."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    ip = getattr(ip, "ipv4_mapped", None) or ip  # a dual-stack socket names 127.0.0.1 as ::ffff:127.0.0.1
    if any(ip in network for network in _allowed_networks()):
        return
    if not ip.is_global or ip.is_multicast:
        raise PermanentError(f"{host} resolves to {ip}, a private or reserved address: deliveries go to public "
                             "hosts only.", code="private_address")


def public_url_check(url: str) -> None:
    """Refuse a URL that is not http(s) or whose host resolves to a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError("The URL must start with http:// or https:// and name a host.", code="url_invalid")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientError(f"The host {parts.hostname} could not be resolved.", code="dns_failed") from exc
    for info in infos:
        public_address_check(parts.hostname, info[4][0])


class _PublicPeer:
    """A connection that checks the address it reached before anything (a TLS handshake, the request) is sent: the
    name is resolved again to connect, and may answer differently than it did to ``public_url_check``. The URL's
    host stays what the request names, so the Host header and TLS SNI and certificate checks are unchanged."""

    def _new_conn(self):
        sock = super()._new_conn()
        try:
            public_address_check(self.host, sock.getpeername()[0])
        except BaseException:
            sock.close()
            raise
        return sock


class _PublicHTTPConnection(_PublicPeer, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeer, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """Connections only to addresses ``public_address_check`` allows. Its ``PermanentError`` is no network error,
    so urllib3 discards the connection and requests passes the error on as it is. (Through a proxy the proxy
    connects, and only the check before the call applies.)"""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def session(*, public_only: bool = False) -> requests.Session:
    """This thread's session: connections to a receiver are reused across deliveries. ``public_only``: the one for
    tenant-supplied URLs, which connects only to public addresses (``PublicOnlyAdapter``)."""
    name = "public_session" if public_only else "session"
    s = getattr(_local, name, None)
    if s is None:
        s = requests.Session()
        s.headers["User-Agent"] = "Zhiku-Distribution/1.0"
        if public_only:
            s.mount("http://", PublicOnlyAdapter())
            s.mount("https://", PublicOnlyAdapter())
        setattr(_local, name, s)
    return s


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _shown(url: str) -> str:
    """``url`` as a message may name it: scheme, host, port and path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def raise_for_status(response: requests.Response, *, what: str = "The receiver") -> None:
    """Only a 2xx is success, as Standard Webhooks and Stripe count it. 5xx, 408 and 429 are worth retrying
    (honouring ``Retry-After``); any other 4xx is permanent.

    A 3xx is permanent too: redirects are not followed (the new address would escape the private-address check,
    and a POST turned into a GET by a 302 would arrive empty), so nothing was delivered, and asking again would get
    the same redirect. The delivery is parked at once, with the redirect's target in its message, for staff to
    correct the channel's endpoint URL and retry. The target is named without its query string, fragment and user
    info: a redirect keeps the request's query, which carries credentials on some platforms (WeChat's AppSecret),
    and the message is shown in the admin and kept in the audit log."""
    code = response.status_code
    if 200 <= code < 300:
        return
    if code < 400:
        location = response.headers.get("Location", "").strip()
        target = f" to {_shown(urljoin(response.url or '', location))}" if location else ""
        raise PermanentError(f"{what} answered HTTP {code} (a redirect{target}): redirects are not followed, so "
                             "nothing was delivered. Point the channel at the new address and retry.",
                             code=f"http_{code}", status=code)
    snippet = response.text[:200].strip()
    message = f"{what} answered HTTP {code}" + (f": {snippet}" if snippet else ".")
    if code in (408, 429) or code >= 500:
        raise TransientError(message, code=f"http_{code}", status=code,
                             retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    raise PermanentError(message, code=f"http_{code}", status=code)


def request(method: str, url: str, *, check_public: bool = False, **kwargs) -> requests.Response:
    """One HTTP call; network failures, and answers that cannot be read (a body that is not the gzip it claims to
    be), become ``TransientError``. No redirects: a 3xx is the receiver's answer, which ``raise_for_status``
    refuses. ``check_public``: a tenant-supplied URL, which may only reach public addresses."""
    if check_public:
        public_url_check(url)
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("allow_redirects", False)
    host = urlsplit(url).hostname
    try:
        return session(public_only=check_public).request(method, url, **kwargs)
    except requests.Timeout as exc:
        raise TransientError(f"No answer from {host} in time.", code="timeout") from exc
    except requests.ConnectionError as exc:
        raise TransientError(f"Could not connect to {host}.", code="connection_failed") from exc
    except requests.RequestException as exc:  # named by type only: its text may hold the URL and its credentials
        raise TransientError(f"The answer from {host} could not be read ({type(exc).__name__}).",
                             code="answer_unreadable") from exc
