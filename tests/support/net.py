"""Ports for the servers the tests start on 127.0.0.1."""

import socket
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, attempts: int = 100, pause: float = 0.1) -> None:
    """Return once something listens on ``port`` (or after ``attempts`` tries; the test then fails on its own)."""
    for _ in range(attempts):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(pause)
