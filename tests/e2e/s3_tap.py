"""An HTTP tap in front of the moto S3 server: it forwards every request and can act on one write.

The end-to-end test must kill the triggerer at an exact point -- after a manifest write has
reached S3 but before the trigger that wrote it goes on. Timing a ``kill`` from outside
cannot hit that window; the tap can: it forwards the matching ``PUT`` to moto, and once
moto has stored it, runs the test's action (SIGKILL) *before* answering the writer.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Hop-by-hop headers are the proxy's own business (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"})


@dataclass
class WriteAction:
    """Run ``action`` once, after moto stored a ``PUT`` whose path matches and whose body has ``marker``."""

    path: re.Pattern[str]
    marker: bytes
    action: Callable[[], None]
    fired: bool = False


class S3Tap:
    """``endpoint_url`` forwards to ``upstream``; :meth:`after_write` arms a one-shot action."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.actions: list[WriteAction] = []
        self._lock = threading.Lock()
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                body = self._body()
                upstream = http.client.HTTPConnection(tap.upstream_host, tap.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                action = tap._match(self.command, self.path, body) if response.status < 300 else None
                if action is not None:
                    action.action()  # e.g. SIGKILL the writer before it hears back
                self.send_response(response.status)
                # A HEAD answer announces the object's length, not that of its (empty) body.
                keep_length = self.command == "HEAD"
                for name, value in response.getheaders():
                    lower = name.lower()
                    if lower not in _HOP_BY_HOP and (keep_length or lower != "content-length"):
                        self.send_header(name, value)
                if not keep_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline().strip():
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="s3-tap", daemon=True)

    def after_write(self, path_regex: str, marker: bytes, action: Callable[[], None]) -> WriteAction:
        armed = WriteAction(re.compile(path_regex), marker, action)
        with self._lock:
            self.actions.append(armed)
        return armed

    def _match(self, method: str, path: str, body: bytes) -> WriteAction | None:
        if method != "PUT":
            return None
        with self._lock:
            for armed in self.actions:
                if not armed.fired and armed.path.search(path) and armed.marker in body:
                    armed.fired = True
                    return armed
        return None

    def __enter__(self) -> S3Tap:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
