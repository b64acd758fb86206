"""A local stand-in for DingTalk's robot endpoint that checks signatures the way DingTalk does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCESS_TOKEN = "robot-token-1"


class RobotServer:
    """Answers like DingTalk: HTTP 200 with errcode 0, or a non-zero errcode (310000 for a bad
    signature, or whatever ``fail_with`` says); ``http_status`` makes it fail at the HTTP level."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.fail_with: int | None = None
        self.http_status = 200
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, answer = server.judge(self.path, raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/robot/send?access_token={ACCESS_TOKEN}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RobotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def judge(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if self.http_status != 200:
            self.rejected.append(f"http {self.http_status}")
            return self.http_status, {"message": "busy"}
        parsed = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parsed.query)
        raw_sign = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p).get("sign", "")
        if query.get("access_token") != [ACCESS_TOKEN]:
            self.rejected.append("token")
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        try:
            ts = int(query["timestamp"][0])
            sign = query["sign"][0]
        except (KeyError, ValueError):
            self.rejected.append("unsigned")
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        expected = base64.b64encode(
            hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
        ).decode()
        # DingTalk refuses timestamps more than an hour off, and the Base64 must arrive URL-encoded
        # ("+", "/" and "=" escaped), otherwise the "+" would decode to a space.
        fresh = abs(time.time() * 1000 - ts) < 3_600_000
        encoded = not any(ch in raw_sign for ch in "+/=")
        if not (fresh and encoded and hmac.compare_digest(sign, expected)):
            self.rejected.append("sign")
            return 200, {"errcode": 310000, "errmsg": "sign not match, more: [...]"}
        if self.fail_with is not None:
            self.rejected.append(f"errcode {self.fail_with}")
            return 200, {"errcode": self.fail_with, "errmsg": "send too fast, exceed 20 times per minute"}
        self.accepted.append(json.loads(raw))
        return 200, {"errcode": 0, "errmsg": "ok"}
