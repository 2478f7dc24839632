"""HTTP webhook receiver for MinIO and Ceph RGW bucket notifications.

Authentication is a shared secret, accepted as `Authorization: Bearer <secret>` (MinIO's `auth_token`),
as the password of HTTP Basic auth (an RGW push-endpoint URL `http://user:<secret>@host/`), or as a
`?token=<secret>` query parameter. Anything else gets 401.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from worker.events import InvalidEvent
from worker.ingest import Enqueuer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def presented_secrets(headers, path: str) -> list[str]:
    found: list[str] = []
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        found.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            found.append(base64.b64decode(value.strip()).decode().partition(":")[2])
        except (ValueError, UnicodeDecodeError):
            pass
    found.extend(parse_qs(urlsplit(path).query).get("token", []))
    return found


def make_handler(enqueuer: Enqueuer, secret: str):
    expected = secret.encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "retouch-webhook"

        def log_message(self, fmt: str, *args) -> None:  # route through logging, not stderr
            log.debug("webhook %s", fmt % args)

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/healthz":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if not any(hmac.compare_digest(s.encode(), expected) for s in presented_secrets(self.headers, self.path)):
                self._reply(401, {"error": "missing or wrong shared secret"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {"error": "notification too large"})
                return
            body = self.rfile.read(length)
            try:
                result = enqueuer.handle(body)
            except InvalidEvent as error:
                self._reply(400, {"error": str(error)})
                return
            except Exception:
                # Broker unreachable: 503 makes MinIO/RGW keep the event and retry it later.
                log.exception("could not enqueue webhook notification")
                self._reply(503, {"error": "could not enqueue; retry later"})
                return
            self._reply(200, {"enqueued": result.enqueued, "ignored": result.ignored})

    return Handler


class WebhookServer:
    def __init__(self, enqueuer: Enqueuer, secret: str, *, host: str = "0.0.0.0", port: int = 8080) -> None:
        if not secret:
            raise ValueError("the webhook needs RETOUCH_WEBHOOK_SECRET: an open endpoint would let anyone enqueue")
        self._server = ThreadingHTTPServer((host, port), make_handler(enqueuer, secret))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> WebhookServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
