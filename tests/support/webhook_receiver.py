"""A webhook receiver on 127.0.0.1 that does what the Standard Webhooks specification asks of one: it verifies the
signature and timestamp, deduplicates by ``webhook-id``, and answers 2xx once it has the message.

It can misbehave on purpose: fail a given fraction of requests with 503 (``failure_rate``), answer a fixed status
with headers (``script``: the next answers, e.g. ``[(429, {"Retry-After": "7"})]``), or hold a request before
answering (``delay``). Every request is recorded; ``received`` holds each message id once, ``arrivals`` counts how
often each id arrived.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter

from distribution.connectors.webhook import verify_signature

from .stand_in import StandIn, StandInHandler


class _Handler(StandInHandler):
    def handle_request(self, method: str) -> None:
        if method != "POST":
            self.reply(405, b"{}", "application/json")
            return
        status, headers, answer = self.stand_in.handle(self.headers, self.read_body())
        self.reply(status, json.dumps(answer).encode(), "application/json", headers)


class WebhookReceiver(StandIn):
    handler, name = _Handler, "webhook-receiver"

    def __init__(self, secret: str, *, failure_rate: float = 0.0, seed: int | None = None, delay: float = 0.0):
        self.secret, self.failure_rate, self.delay = secret, failure_rate, delay
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.script: list[tuple[int, dict]] = []
        self.received: dict[str, dict] = {}
        self.arrivals: Counter[str] = Counter()
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return super().url + "/hooks"

    def handle(self, headers, body: bytes) -> tuple[int, dict, dict]:
        msg_id = headers.get("webhook-id", "")
        with self.lock:
            self.requests.append({"id": msg_id, "headers": dict(headers), "body": body})
            scripted = self.script.pop(0) if self.script else None
            fail = self.random.random() < self.failure_rate
        if self.delay:
            time.sleep(self.delay)
        if not verify_signature(self.secret, headers, body):
            return 401, {}, {"error": "bad signature"}
        if scripted is not None:
            return scripted[0], scripted[1], {"error": "scripted"}
        if fail:
            return 503, {}, {"error": "try again"}
        with self.lock:
            self.arrivals[msg_id] += 1
            if msg_id not in self.received:
                self.received[msg_id] = json.loads(body)
        return 200, {}, {"id": f"rcv-{msg_id}"}
