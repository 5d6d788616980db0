"""A real HTTP server on 127.0.0.1 for download tests, with misbehaviours on demand.

Each path is a :class:`Route`: a body with a status, optionally announcing a different
Content-Length (a body cut short), stalling before the headers or in the middle of the
body (timeouts), or sending no length at all. The server counts the requests per path,
so a test can tell whether a second load hit the network.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    announce: int | None = None  # Content-Length to send, if not len(body)
    send_length: bool = True  # False: no Content-Length, the body ends when the socket closes
    stall_before_headers: float = 0.0  # seconds
    stall_after: int | None = None  # stall once this many body bytes are sent
    stall_seconds: float = 0.0
    chunk_delay: float = 0.0  # seconds between 8 KiB chunks: a slow download
    headers: dict[str, str] = field(default_factory=dict)


class LocalServer:
    """``with LocalServer() as server: server.routes['/x'] = Route(b'...'); server.url('/x')``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()  # wakes stalled handlers at shutdown
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            server.hits[path] += 1
            route = server.routes.get(path) or Route(b"not found", status=404)
            if route.stall_before_headers and server.stopping.wait(route.stall_before_headers):
                return
            self.send_response(route.status)
            if route.send_length:
                length = route.announce if route.announce is not None else len(route.body)
                self.send_header("Content-Length", str(length))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send_body(route)  # the client may give up early, as a test wants
            self.close_connection = True

        def _send_body(self, route: Route) -> None:
            body = route.body
            for start in range(0, len(body), 8192):
                if route.stall_after is not None and start >= route.stall_after:
                    self.wfile.flush()
                    server.stopping.wait(route.stall_seconds)
                    return
                self.wfile.write(body[start : start + 8192])
                if route.chunk_delay:
                    self.wfile.flush()
                    server.stopping.wait(route.chunk_delay)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler


def refused_url() -> str:
    """An address on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/volume.nii"
