"""HTTP for connectors: one keep-alive session per process, timeouts, the private-address guard, and the mapping
of platform answers onto ``TransientError`` and ``PermanentError``.

Tenant-supplied URLs (webhook and partner endpoints) must not reach the platform's own network: a host that
resolves to a loopback, private, link-local or otherwise reserved address is refused, unless it lies in
``DISTRIBUTION_ALLOWED_NETWORKS`` (the test suite's receivers on 127.0.0.1). The check runs when the channel is saved
and again before every call, since DNS answers change.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from .connectors.base import PermanentError, TransientError

_local = threading.local()
TIMEOUT = (5, 20)  # connect, read
CALL_SECONDS = sum(TIMEOUT)  # the longest one call can take before it times out


def session() -> requests.Session:
    """This thread's session: connections to a receiver are reused across deliveries."""
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        s.headers["User-Agent"] = "Zhiku-Distribution/1.0"
    return s


def _allowed_networks():
    return [ipaddress.ip_network(n, strict=False) for n in settings.DISTRIBUTION_ALLOWED_NETWORKS]


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
    allowed = _allowed_networks()
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if any(address in network for network in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise PermanentError(f"{parts.hostname} resolves to {address}, a private or reserved address: "
                                 "deliveries go to public hosts only.", code="private_address")


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


def raise_for_status(response: requests.Response, *, what: str = "The receiver") -> None:
    """Only a 2xx is success, as Standard Webhooks and Stripe count it. 5xx, 408 and 429 are worth retrying
    (honouring ``Retry-After``); any other 4xx is permanent.

    A 3xx is permanent too: redirects are not followed (the new address would escape the private-address check,
    and a POST turned into a GET by a 302 would arrive empty), so nothing was delivered, and asking again would get
    the same redirect. The delivery is parked at once, with the redirect's target in its message, for staff to
    correct the channel's endpoint URL and retry."""
    code = response.status_code
    if 200 <= code < 300:
        return
    if code < 400:
        location = response.headers.get("Location", "").strip()
        target = f" to {urljoin(response.url or '', location)}" if location else ""
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
    """One HTTP call; network failures become ``TransientError``. No redirects: a 3xx is the receiver's answer, which
    ``raise_for_status`` refuses."""
    if check_public:
        public_url_check(url)
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("allow_redirects", False)
    try:
        return session().request(method, url, **kwargs)
    except requests.Timeout as exc:
        raise TransientError(f"No answer from {urlsplit(url).hostname} in time.", code="timeout") from exc
    except requests.ConnectionError as exc:
        raise TransientError(f"Could not connect to {urlsplit(url).hostname}.", code="connection_failed") from exc
