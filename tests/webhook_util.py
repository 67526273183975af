"""A real chat webhook on localhost for the tests: an `http.server` that takes JSON posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer


@contextmanager
def json_webhook(path: str, *, refuse: Callable[[dict], bool] = lambda body: False,
                 keep_path: bool = False) -> Iterator[tuple[str, list[dict]]]:
    """The webhook's URL (``path`` on a free port) and the JSON bodies it took, in order
    (with the request's path as "_path" when ``keep_path``). A body that ``refuse`` holds
    for is answered with HTTP 500 and not kept."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            assert self.headers["Content-Type"] == "application/json"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if refuse(body):
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"channel_is_archived")
                return
            received.append({**body, "_path": self.path} if keep_path else body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", received
    finally:
        server.shutdown()
        server.server_close()
