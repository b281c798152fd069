"""A local stand-in for the parts of Stripe's API that Zhiku uses, speaking Stripe's documented formats.

API (https://docs.stripe.com/api), authenticated with ``Authorization: Bearer <secret key>`` (or Basic with the key
as user name); bodies are form-encoded with bracket notation (``line_items[0][price_data][unit_amount]=1000``);
amounts in the three-decimal currencies (BHD, JOD, KWD, OMR, TND) must end in 0:

- ``POST /v1/checkout/sessions`` (optional ``expires_at``: 30 minutes to 24 hours ahead),
  ``GET /v1/checkout/sessions/<id>``
- ``POST /v1/checkout/sessions/<id>/expire``: only an open session. Stripe then sends ``checkout.session.expired``
  on its own time; the stand-in queues it until the test calls ``deliver_queued()``, so the order is the test's.
- ``GET /v1/payment_intents/<id>``: a captured PaymentIntent, with the ``metadata`` of ``payment_intent_data``.
- ``POST /v1/refunds`` (``payment_intent`` or ``charge``, optional ``amount``). Stripe then sends
  ``refund.created``, for the dashboard's refunds as for the API's; the stand-in queues it (``deliver_queued()``),
  or with ``send_at_once`` sends it from a thread while it answers the call.

As on Stripe, a POST with an ``Idempotency-Key`` that was seen before replays the first response (header
``Idempotent-Replayed: true``), and the same key with other parameters is refused with an ``idempotency_error``.
Like Stripe, it keeps no result for requests that failed authentication or parameter validation. Errors have
Stripe's shape ``{"error": {"type", "code", "message", "param"}}``.

Test-only control endpoints play the customer on the hosted page and Stripe's event delivery:

- ``POST /_test/sessions/<id>/complete``: the session is paid (a ``pi_...`` PaymentIntent is captured) and a
  ``checkout.session.completed`` event is delivered to the configured webhook URL.
- ``POST /_test/sessions/<id>/expire``: the session expires and ``checkout.session.expired`` is delivered.

- ``POST /_test/payment_intents/<id>/dispute``: the cardholder's bank disputes the charge
  (``charge.dispute.created``; optional ``amount``, ``reason``); sent again with ``{"status": "won"}`` or
  ``{"status": "lost"}``, the dispute closes (``charge.dispute.closed``). A disputed charge cannot be refunded.
- ``POST /_test/refunds/<id>/fail``: the card issuer refuses the refund (optional ``failure_reason``, default
  ``expired_or_canceled_card``); its money returns to the balance, and ``refund.failed`` is delivered.

Each takes an optional JSON body ``{"deliver": false}`` to create the event without sending it, and answers
``{"event": <the event body, exactly as signed>, "delivery": {"status": <HTTP status>, "body": <response>}}``.
Deliveries are signed as Stripe signs them: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the webhook secret>``.

Usage::

    with StripeServer() as api:
        api.set_webhook("http://127.0.0.1:8000/payments/webhooks/stripe/", host_header="alpha.localhost")
        ...  # point STRIPE_API_BASE at api.url, STRIPE_SECRET_KEY at api.secret_key
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .stand_in import StandIn, StandInHandler

API_VERSION = "2025-06-30.basil"
# Stripe's three-decimal currencies: amounts in them must be a multiple of 10 (https://docs.stripe.com/currencies).
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}


class StripeAPIError(Exception):
    """An error answer, rendered as Stripe renders it."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, keep: bool = True):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.keep = keep  # whether an idempotency key remembers this answer

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _invalid(message: str, *, code: str = "parameter_invalid", param: str | None = None) -> StripeAPIError:
    return StripeAPIError(400, message, code=code, param=param, keep=False)


@dataclass
class RecordedRequest:
    """One request as the stand-in received it; ``params`` decoded from bracket notation."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict
    raw: str
    status: int = 0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def decode_form(pairs) -> dict:
    """Stripe's bracket notation to nested dicts and lists: ``a[0][b]=1`` -> ``{"a": [{"b": "1"}]}``."""
    root: dict = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if match is None:
            raise _invalid(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            if not isinstance(node, dict):
                raise _invalid(f"Invalid parameter name: {key}", param=key)
            part = part or str(len(node))  # "a[]" appends
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _integer(value, param: str, *, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None
    if number < minimum:
        raise _invalid(f"This value must be greater than or equal to {minimum}.", code="parameter_invalid_integer",
                       param=param)
    return number


def _url(value, param: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise _invalid("Not a valid URL", code="url_invalid", param=param)
    return value


def _metadata(value, param: str = "metadata") -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise _invalid("Invalid object", param=param)
    if len(value) > 50 or any(len(k) > 40 or not isinstance(v, str) or len(v) > 500 for k, v in value.items()):
        raise _invalid("Metadata can have up to 50 keys of up to 40 characters, each with a string of up to 500.",
                       param=param)
    return dict(value)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class _Handler(StandInHandler):
    server_version = "stripe-stand-in"

    def do_DELETE(self):
        self.handle_request("DELETE")

    def handle_request(self, method: str) -> None:
        stand_in: StripeServer = self.stand_in
        split = urlsplit(self.path)
        raw = self.read_body().decode()
        record = RecordedRequest(method=method, path=split.path, headers=dict(self.headers.items()), params={},
                                 raw=raw)
        with stand_in._lock:
            stand_in.requests.append(record)
        extra: dict = {}
        try:
            if split.path.startswith("/_test/"):
                status, body = stand_in.handle_control(split.path, json.loads(raw) if raw else {})
            else:
                record.params = decode_form(parse_qsl(split.query, keep_blank_values=True)
                                            + parse_qsl(raw, keep_blank_values=True))
                with stand_in._lock:
                    status, body, extra = stand_in.handle_api(method, split.path, self.headers, record.params)
        except StripeAPIError as exc:
            status, body = exc.status, exc.body()
        record.status = status
        version = self.headers.get("Stripe-Version") or API_VERSION
        headers = {"Request-Id": _id("req"), "Stripe-Version": version, **extra}
        self.reply(status, json.dumps(body).encode(), "application/json", headers)


class StripeServer(StandIn):
    """The stand-in's state and its HTTP server on 127.0.0.1, on a free port, in a background thread."""

    handler, name = _Handler, "stripe-stand-in"

    def __init__(self, *, secret_key: str | None = None, webhook_secret: str | None = None):
        self.secret_key = secret_key or f"sk_test_{secrets.token_hex(12)}"
        self.webhook_secret = webhook_secret or f"whsec_{secrets.token_hex(16)}"
        self.sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.events: list[dict] = []
        self.requests: list[RecordedRequest] = []
        self.webhook_url: str | None = None
        self.webhook_host: str | None = None
        self._idempotent: dict[tuple[str, str], tuple[tuple, int, bytes]] = {}
        self._lock = threading.RLock()
        self.queued: list[bytes] = []  # events caused by API calls, not delivered yet
        # Or, with send_at_once, delivered from a thread while the API call is still being answered, as Stripe may.
        self.send_at_once = False
        self.sending: list[threading.Thread] = []
        self.sent: list[tuple[int, dict | str]] = []

    def set_webhook(self, url: str | None, host_header: str | None = None) -> None:
        """Where events go; ``host_header`` replaces the URL's host in the ``Host`` header (tenant routing)."""
        self.webhook_url, self.webhook_host = url, host_header

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- webhooks ----------------------------------------------------------------------------------------------

    def sign(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
        timestamp = int(time.time()) if timestamp is None else timestamp
        key = (self.webhook_secret if secret is None else secret).encode()
        digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    def deliver(self, body: bytes | str, *, timestamp: int | None = None, secret: str | None = None,
                signature: str | None = None) -> tuple[int, dict | str]:
        """POST an event body to the webhook URL, signed now (as Stripe re-signs every retry) unless ``signature``
        gives the header verbatim. Returns the response's status and its body (parsed when JSON)."""
        if not self.webhook_url:
            raise RuntimeError("set_webhook() first")
        body = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "Accept": "*/*; q=0.5"}
        if signature is None:
            signature = self.sign(body, timestamp=timestamp, secret=secret)
        if signature:
            headers["Stripe-Signature"] = signature
        target = urlsplit(self.webhook_url)
        headers["Host"] = self.webhook_host or target.netloc
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            connection.request("POST", target.path or "/", body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def deliver_queued(self) -> list[tuple[int, dict | str]]:
        """Deliver the events that API calls caused (as Stripe does after answering them); return each answer."""
        with self._lock:
            bodies, self.queued = self.queued, []
        return [self.deliver(body) for body in bodies]

    def _event(self, type: str, obj: dict) -> bytes:
        event = {"id": _id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
                 "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": type}
        self.events.append(event)
        return json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON

    # --- Python shortcuts to the control endpoints ---------------------------------------------------------------

    def complete(self, session_id: str, *, deliver: bool = True) -> dict:
        return self._control(f"/_test/sessions/{session_id}/complete", deliver=deliver)

    def expire(self, session_id: str, *, deliver: bool = True) -> dict:
        return self._control(f"/_test/sessions/{session_id}/expire", deliver=deliver)

    def dispute(self, intent_id: str, *, deliver: bool = True, **options) -> dict:
        return self._control(f"/_test/payment_intents/{intent_id}/dispute", deliver=deliver, **options)

    def fail_refund(self, refund_id: str, *, deliver: bool = True, **options) -> dict:
        return self._control(f"/_test/refunds/{refund_id}/fail", deliver=deliver, **options)

    def _control(self, path: str, *, deliver: bool, **options) -> dict:
        host, port = self._httpd.server_address[:2]
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request("POST", path, body=json.dumps({"deliver": deliver, **options}),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status != 200:
            raise AssertionError(f"{path}: {response.status} {text}")
        return json.loads(text)

    # --- API ---------------------------------------------------------------------------------------------------

    def _authenticate(self, headers) -> str:
        authorization = headers.get("Authorization", "")
        scheme, _, credential = authorization.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        if not key:
            raise StripeAPIError(401, "You did not provide an API key. You need to provide your API key in the "
                                      "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                                      "YOUR_SECRET_KEY').", keep=False)
        if not hmac.compare_digest(key, self.secret_key):
            raise StripeAPIError(401, f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}", keep=False)
        return key

    def handle_api(self, method: str, path: str, headers, params: dict) -> tuple[int, dict, dict]:
        """Answer one API call: (status, body, extra headers). Idempotent replays come from ``_idempotent``."""
        api_key = self._authenticate(headers)
        key = headers.get("Idempotency-Key")
        fingerprint = (method, path, json.dumps(params, sort_keys=True))
        if method == "POST" and key:
            stored = self._idempotent.get((api_key, key))
            if stored is not None:
                if stored[0] != fingerprint:
                    raise StripeAPIError(400, "Keys for idempotent requests can only be used with the same "
                                              f"parameters they were first used with. Try using a key other than "
                                              f"'{key}' if you meant to execute a different request.",
                                         type="idempotency_error", keep=False)
                return stored[1], json.loads(stored[2]), {"Idempotent-Replayed": "true"}
        try:
            status, body = 200, self._route(method, path, params)
        except StripeAPIError as exc:
            if not exc.keep:
                raise
            status, body = exc.status, exc.body()
        if method == "POST" and key:
            self._idempotent[(api_key, key)] = (fingerprint, status, json.dumps(body).encode())
        return status, body, {}

    def _route(self, method: str, path: str, params: dict) -> dict:
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            return self._session_create(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path)
        if method == "GET" and match:
            return self._session(match.group(1))
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)/expire", path)
        if method == "POST" and match:
            return self._session_expire(match.group(1))
        if (method, path) == ("POST", "/v1/refunds"):
            return self._refund_create(params)
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if method == "GET" and match:
            if match.group(1) not in self.payment_intents:
                raise StripeAPIError(404, f"No such payment_intent: '{match.group(1)}'", code="resource_missing",
                                     param="intent")
            return _public(self.payment_intents[match.group(1)])
        raise StripeAPIError(404, f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                                  "or we can help at https://support.stripe.com/.", keep=False)

    def _session(self, session_id: str) -> dict:
        if session_id not in self.sessions:
            raise StripeAPIError(404, f"No such checkout.session: '{session_id}'", code="resource_missing",
                                 param="session")
        return self.sessions[session_id]

    def _session_create(self, params: dict) -> dict:
        mode = params.get("mode")
        if not mode:
            raise _invalid("Missing required param: mode.", code="parameter_missing", param="mode")
        if mode != "payment":
            raise _invalid(f"This stand-in only knows mode=payment, not {mode}.", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise _invalid("You must provide at least one line item.", code="parameter_missing", param="line_items")
        total, currencies = 0, set()
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            price = item.get("price_data") if isinstance(item, dict) else None
            if not isinstance(price, dict):
                raise _invalid("You must specify either `price` or `price_data`.", code="parameter_missing",
                               param=f"{where}[price_data]")
            currency = str(price.get("currency", "")).lower()
            if not re.fullmatch(r"[a-z]{3}", currency):
                raise _invalid(f"Invalid currency: {currency}.", param=f"{where}[price_data][currency]")
            product = price.get("product_data")
            if not isinstance(product, dict) or not product.get("name"):
                raise _invalid("Missing required param: name.", code="parameter_missing",
                               param=f"{where}[price_data][product_data][name]")
            unit = _integer(price.get("unit_amount"), f"{where}[price_data][unit_amount]")
            if currency in THREE_DECIMAL and unit % 10:
                raise _invalid(f"Amounts in {currency.upper()} must end in 0 (a multiple of 10 in the minor unit).",
                               code="amount_invalid", param=f"{where}[price_data][unit_amount]")
            quantity = _integer(item.get("quantity"), f"{where}[quantity]", minimum=1)
            total += unit * quantity
            currencies.add(currency)
        if len(currencies) > 1:
            raise _invalid("All line items must use the same currency.", param="line_items")
        success_url = _url(params["success_url"], "success_url") if params.get("success_url") else None
        cancel_url = _url(params["cancel_url"], "cancel_url") if params.get("cancel_url") else None
        reference = params.get("client_reference_id")
        if reference is not None and len(reference) > 200:
            raise _invalid("client_reference_id can be at most 200 characters.", param="client_reference_id")
        created = int(time.time())
        expires_at = created + 24 * 3600
        if params.get("expires_at") not in (None, ""):
            expires_at = _integer(params["expires_at"], "expires_at")
            if expires_at > created + 24 * 3600:
                raise _invalid("The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                               "creation.", param="expires_at")
            if expires_at < created + 30 * 60:
                raise _invalid("The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                               "creation.", param="expires_at")
        session_id = f"cs_test_{secrets.token_hex(24)}"
        session = {
            "id": session_id, "object": "checkout.session", "amount_subtotal": total, "amount_total": total,
            "cancel_url": cancel_url, "client_reference_id": reference, "created": created,
            "currency": currencies.pop(), "customer_email": params.get("customer_email"),
            "expires_at": expires_at, "livemode": False, "metadata": _metadata(params.get("metadata")),
            "mode": mode, "payment_intent": None, "payment_status": "unpaid", "status": "open",
            "success_url": success_url, "url": f"{self.url}/pay/{session_id}",
        }
        intent_data = params.get("payment_intent_data") or {}
        session["_intent_metadata"] = _metadata(intent_data.get("metadata"), "payment_intent_data[metadata]")
        self.sessions[session_id] = session
        return _public(session)

    def _session_expire(self, session_id: str) -> dict:
        session = self._session(session_id)
        if session["status"] != "open":
            raise StripeAPIError(400, f"Only Checkout Sessions with a status in [\"open\"] can be expired. This "
                                      f"Checkout Session has a status of \"{session['status']}\".")
        session.update(status="expired", url=None)
        self._caused(self._event("checkout.session.expired", _public(session)))
        return _public(session)

    def _refund_create(self, params: dict) -> dict:
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if not intent_id and not charge_id:
            raise _invalid("Must provide either `payment_intent` or `charge`.", code="parameter_missing",
                           param="payment_intent")
        intent = self.payment_intents.get(intent_id) if intent_id else next(
            (pi for pi in self.payment_intents.values() if pi["latest_charge"] == charge_id), None)
        if intent is None:
            kind, ref = ("payment_intent", intent_id) if intent_id else ("charge", charge_id)
            raise StripeAPIError(400, f"No such {kind}: '{ref}'", code="resource_missing", param=kind)
        remaining = intent["amount_received"] - intent["_refunded"]
        if remaining <= 0:
            raise StripeAPIError(400, f"Charge {intent['latest_charge']} has already been refunded.",
                                 code="charge_already_refunded")
        amount = remaining if params.get("amount") in (None, "") else _integer(params["amount"], "amount", minimum=1)
        if intent["currency"] in THREE_DECIMAL and amount % 10:
            raise StripeAPIError(400, f"Amounts in {intent['currency'].upper()} must end in 0 (a multiple of 10 in "
                                      "the minor unit).", code="amount_invalid", param="amount")
        if amount > remaining:
            raise StripeAPIError(400, f"Refund amount ({amount} {intent['currency']}) is greater than unrefunded "
                                      f"amount on charge ({remaining} {intent['currency']})",
                                 code="amount_too_large", param="amount")
        if intent["_disputed"]:
            raise StripeAPIError(400, f"Charge {intent['latest_charge']} has been charged back; cannot issue a "
                                      "refund.", code="charge_disputed")
        intent["_refunded"] += amount
        refund = {"id": _id("re"), "object": "refund", "amount": amount, "charge": intent["latest_charge"],
                  "created": int(time.time()), "currency": intent["currency"],
                  "metadata": _metadata(params.get("metadata")), "payment_intent": intent["id"],
                  "reason": params.get("reason") or None, "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        # Since API version 2024-10-28 every refund, the dashboard's and the API's, sends refund.created.
        self._caused(self._event("refund.created", refund))
        return refund

    def _caused(self, body: bytes) -> None:
        if not self.send_at_once:
            self.queued.append(body)
            return
        sender = threading.Thread(target=lambda: self.sent.append(self.deliver(body)), daemon=True)
        self.sending.append(sender)
        sender.start()

    # --- control -----------------------------------------------------------------------------------------------

    def handle_control(self, path: str, options: dict) -> tuple[int, dict]:
        match = re.fullmatch(r"/_test/payment_intents/([^/]+)/dispute", path)
        if match is not None:
            with self._lock:
                body = self._dispute(match.group(1), options)
            return 200, self._send(body, options)
        match = re.fullmatch(r"/_test/refunds/([^/]+)/fail", path)
        if match is not None:
            with self._lock:
                body = self._refund_fail(match.group(1), options)
            return 200, self._send(body, options)
        match = re.fullmatch(r"/_test/sessions/([^/]+)/(complete|expire)", path)
        if match is None:
            raise StripeAPIError(404, f"Unknown control endpoint {path}")
        session_id, action = match.groups()
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise StripeAPIError(400, f"The session is {session['status']}, not open.",
                                     code="checkout_session_not_open")
            if action == "complete":
                intent_id = _id("pi")
                self.payment_intents[intent_id] = {
                    "id": intent_id, "object": "payment_intent", "amount": session["amount_total"],
                    "amount_received": session["amount_total"], "currency": session["currency"],
                    "latest_charge": _id("ch"), "metadata": session["_intent_metadata"], "status": "succeeded",
                    "_refunded": 0, "_disputed": False}
                session.update(status="complete", payment_status="paid", payment_intent=intent_id)
                body = self._event("checkout.session.completed", _public(session))
            else:
                session.update(status="expired", url=None)
                body = self._event("checkout.session.expired", _public(session))
        return 200, self._send(body, options)

    def _send(self, body: bytes, options: dict) -> dict:
        delivery = None
        if options.get("deliver", True) and self.webhook_url:
            status, response = self.deliver(body)
            delivery = {"status": status, "body": response}
        return {"event": body.decode(), "delivery": delivery}

    def _dispute(self, intent_id: str, options: dict) -> bytes:
        """The cardholder's bank disputes the charge (``charge.dispute.created``) or, with ``"status": "won"`` or
        ``"lost"``, the dispute closes (``charge.dispute.closed``)."""
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            raise StripeAPIError(404, f"No such payment_intent: '{intent_id}'", code="resource_missing")
        dispute = intent.get("_dispute")
        if dispute is None:
            dispute = {"id": _id("dp"), "object": "dispute",
                       "amount": int(options.get("amount") or intent["amount_received"] - intent["_refunded"]),
                       "charge": intent["latest_charge"], "created": int(time.time()), "currency": intent["currency"],
                       "payment_intent": intent_id, "reason": options.get("reason", "fraudulent"),
                       "status": "needs_response"}
            intent.update(_dispute=dispute, _disputed=True)
            return self._event("charge.dispute.created", dict(dispute))
        if options.get("status") not in ("won", "lost"):
            raise StripeAPIError(400, "A dispute closes as won or lost.")
        dispute["status"] = options["status"]
        return self._event("charge.dispute.closed", dict(dispute))


    def _refund_fail(self, refund_id: str, options: dict) -> bytes:
        """The issuer refuses a refund: it fails, its amount is refundable again, and ``refund.failed`` is sent."""
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise StripeAPIError(404, f"No such refund: '{refund_id}'", code="resource_missing")
        if refund["status"] not in ("pending", "succeeded"):
            raise StripeAPIError(400, f"The refund is {refund['status']}.")
        refund.update(status="failed", failure_reason=options.get("failure_reason", "expired_or_canceled_card"),
                      failure_balance_transaction=_id("txn"))
        self.payment_intents[refund["payment_intent"]]["_refunded"] -= refund["amount"]
        return self._event("refund.failed", dict(refund))


def _public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}
