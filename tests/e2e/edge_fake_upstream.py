#!/usr/bin/env python3
"""A scripted upstream for test_edge_forward.sh: answers what berthd would
not (absolute Link and Location naming the upstream, a 401 challenge,
headers a proxy must drop) and records what berth-edge sent (method,
path and query, credentials, forwarded headers, client port) as one JSON
line per request.

Token authentication (test_edge_token.sh): GET /v2/token issues
"tok-N" tokens living TOKEN_TTL seconds (default 60) to Basic KEY:<the
gateway's key>; repositories tok/* want such a token and challenge
anything else with a realm on this server; deny/* challenge every time;
far/* and trick/* name a realm on a second server (another origin, a
third party that must never see the credentials), which logs to the same
file with "server": "third".

    edge_fake_upstream.py PORT_FILE LOG_FILE [TOKEN_TTL]
"""
import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, LOG_FILE = sys.argv[1], sys.argv[2]
TOKEN_TTL = int(sys.argv[3]) if len(sys.argv) > 3 else 60
GATEWAY_KEY = "brt_gateway_key"
tokens = {}  # token -> expiry (time.monotonic())
tokens_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def challenge(self, realm, scope):
        self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}', [
            ("Content-Type", "application/json"),
            ("WWW-Authenticate", 'Bearer realm="%s",service="fake registry",scope="%s"' % (realm, scope)),
        ])

    def token_endpoint(self):
        basic = "Basic " + base64.b64encode(("KEY:" + GATEWAY_KEY).encode()).decode()
        if self.headers.get("Authorization") != basic:
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("Content-Type", "application/json")])
            return
        with tokens_lock:
            token = "tok-%d" % (len(tokens) + 1)
            tokens[token] = time.monotonic() + TOKEN_TTL
        body = json.dumps({"token": token, "expires_in": TOKEN_TTL}).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def token_valid(self):
        value = self.headers.get("Authorization") or ""
        with tokens_lock:
            expiry = tokens.get(value[len("Bearer "):]) if value.startswith("Bearer ") else None
        return expiry is not None and time.monotonic() < expiry

    def handle_any(self):
        origin = "http://127.0.0.1:%d" % self.server.server_address[1]
        with open(LOG_FILE, "a") as log:
            log.write(json.dumps({
                "server": getattr(self.server, "name", "main"),
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "accept": self.headers.get("Accept"),
                "range": self.headers.get("Range"),
                "if_none_match": self.headers.get("If-None-Match"),
                "cookie": self.headers.get("Cookie"),
                "port": self.client_address[1],
            }) + "\n")
        path = self.path.split("?")[0]
        repo = path[len("/v2/"):].split("/")[0]
        if path == "/v2/token":
            self.token_endpoint()
        elif repo in ("tok", "deny"):
            scope = "repository:%s:pull" % path[len("/v2/"):].rsplit("/", 2)[0]
            if repo != "deny" and self.token_valid():
                self.answer(200, b'{"token":"accepted"}', [("Content-Type", "application/json")])
            else:
                self.challenge(origin + "/v2/token", scope)
        elif repo == "far":
            self.challenge("http://127.0.0.1:%d/v2/token" % third.server_address[1], "repository:far/app:pull")
        elif repo == "trick":
            self.challenge("%s@127.0.0.1:%d/v2/token" % (origin, third.server_address[1]),
                           "repository:trick/app:pull")
        elif path.endswith("/tags/list"):
            self.answer(200, b'{"name":"x/app","tags":["a"]}', [
                ("Content-Type", "application/json"),
                ("Link", '<%s/v2/x/app/tags/list?n=1&last=a>; rel="next"' % origin),
                ("X-Upstream-Secret", "must-not-pass"),
                ("Set-Cookie", "session=must-not-pass"),
            ])
        elif path.endswith("/manifests/moved"):
            self.answer(307, b"", [("Location", origin + "/v2/x/app/manifests/v1")])
        elif path.endswith("/blobs/sha256:" + "0" * 64):
            self.answer(307, b"", [("Location", "http://storage.invalid/blob?sig=1")])
        elif path.endswith("/manifests/challenge"):
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', [
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", 'Bearer realm="%s/v2/token",service="berth"' % origin),
            ])
        else:
            self.answer(200, b"{}", [("Content-Type", "application/json")])

    do_GET = handle_any
    do_HEAD = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
third = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
third.name = "third"
threading.Thread(target=third.serve_forever, daemon=True).start()
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
