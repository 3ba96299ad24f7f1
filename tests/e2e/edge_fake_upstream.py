#!/usr/bin/env python3
"""A scripted upstream for test_edge_forward.sh: answers what berthd would
not (absolute Link and Location naming the upstream, a 401 challenge,
headers a proxy must drop) and records what berth-edge sent (method,
path and query, credentials, forwarded headers, client port) as one JSON
line per request.

    edge_fake_upstream.py PORT_FILE LOG_FILE
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, LOG_FILE = sys.argv[1], sys.argv[2]


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

    def handle_any(self):
        origin = "http://127.0.0.1:%d" % self.server.server_address[1]
        with open(LOG_FILE, "a") as log:
            log.write(json.dumps({
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
        if path.endswith("/tags/list"):
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
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
