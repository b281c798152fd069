"""What every stand-in platform server on 127.0.0.1 shares: its lifecycle, and the HTTP plumbing of its handler."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandInHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, quiet logs, GET and POST to ``handle_request``; ``self.stand_in`` is the server's owner."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive: the answer must not wait for the delayed ACK

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    @property
    def stand_in(self):
        return self.server.stand_in

    def handle_request(self, method: str) -> None:
        raise NotImplementedError

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class StandIn:
    """A server on a free port of 127.0.0.1 answering with ``handler``: ``with StandIn() as s`` or start()/stop()."""

    handler: type[StandInHandler]
    name = "stand-in"
    _httpd: ThreadingHTTPServer | None = None

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self._httpd.daemon_threads = True
        self._httpd.stand_in = self
        # A short poll interval: shutting down waits for one, and every test starts its own server.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"
