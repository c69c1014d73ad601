"""A stand-in Keystone v3 for one test: password auth answers with a given token and a catalog
whose object-store endpoint is a given URL. It records the auth requests it saw."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def fake_keystone(token: str, object_store_url: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v3/auth/tokens":
                self.send_error(404)
                return
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps(_token_body(object_store_url)).encode()
            self.send_response(201)
            self.send_header("X-Subject-Token", token)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v3", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _token_body(object_store_url: str) -> dict[str, Any]:
    domain = {"id": "default", "name": "Default"}
    return {
        "token": {
            "methods": ["password"],
            "issued_at": "2026-01-01T00:00:00.000000Z",
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "glance", "domain": domain},
            "project": {"id": "p1", "name": "service", "domain": domain},
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": [
                {
                    "id": "s1",
                    "type": "object-store",
                    "name": "swift",
                    "endpoints": [
                        {
                            "id": "e1",
                            "interface": "public",
                            "region": "RegionTwo",
                            "region_id": "RegionTwo",
                            "url": object_store_url,
                        }
                    ],
                }
            ],
        }
    }
