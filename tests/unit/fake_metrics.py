"""A Triton /metrics endpoint on loopback for unit tests: the model's success counter, set by the test."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

COUNTER = 'nv_inference_request_success{{model="m",version="1"}} {count}\n'


class FakeMetrics(http.server.BaseHTTPRequestHandler):
    count = 0  # the counter's value now
    asks = 0  # how many scrapes it answered

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).asks += 1
        body = COUNTER.format(count=type(self).count).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving() -> Iterator[tuple[str, type[FakeMetrics]]]:
    """Its URL and its own handler class (count, asks), for as long as the block runs."""
    handler = type("Handler", (FakeMetrics,), {"count": 0, "asks": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", handler
    finally:
        server.shutdown()
        server.server_close()
