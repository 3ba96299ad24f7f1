#!/usr/bin/env python3
"""A scripted upstream registry for test_edge_shared.sh: content that a
real berthd never sends (a slow 200 MiB blob, a body cut short, bytes
that do not match their digest, an answer that is not HTTP) and a switch
that takes it down (5xx) or moves a tag.  Every request is logged as one
JSON line; the digests it serves are written to DIR/digests.

    edge_scripted_upstream.py DIR

DIR/port is written once it listens.  DIR/mode holds "up" or "down"
(answer 503 to everything); DIR/tag holds which manifest ("1" or "2")
the tag v1 names.  Both are read on every request.
"""
import hashlib
import json
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
REPO = "0123456789abcdef0123456789abcdef/app"
BIG_SIZE = 200 << 20
BIG_RATE = 40 << 20  # bytes per second, so that a download lasts seconds
BLOCK = 1 << 20

# 200 MiB of deterministic bytes: each 1 MiB block differs.
SEED = hashlib.sha256(b"edge big blob").digest() * (BLOCK // 32)


def big_block(i):
    return bytes([i & 255]) + SEED[1:]


h = hashlib.sha256()
for i in range(BIG_SIZE // BLOCK):
    h.update(big_block(i))
BIG = "sha256:" + h.hexdigest()

SMALL = os.urandom(300000)
TRUNC = "sha256:" + hashlib.sha256(SMALL).hexdigest()  # sent cut short
WRONG = "sha256:" + hashlib.sha256(b"something else" + SMALL[14:]).hexdigest()  # SMALL sent instead
GARBAGE = "sha256:" + "a" * 64  # answered with bytes that are not HTTP

CONFIG = b'{"architecture":"arm64","os":"linux"}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def manifest(n):
    return json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [], "annotations": {"n": str(n)},
    }, separators=(",", ":")).encode()


MANIFESTS = {str(n): manifest(n) for n in (1, 2)}
MANIFEST_DIGESTS = {n: "sha256:" + hashlib.sha256(m).hexdigest() for n, m in MANIFESTS.items()}
# The tag "multi": an index of both, 1 for linux/amd64 and 2 for linux/arm64.
MT_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": MT_INDEX,
    "manifests": [{"mediaType": MT_MANIFEST, "digest": MANIFEST_DIGESTS[n], "size": len(MANIFESTS[n]),
                   "platform": {"os": "linux", "architecture": arch}}
                  for n, arch in (("1", "amd64"), ("2", "arm64"))],
}, separators=(",", ":")).encode()
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()

with open(os.path.join(DIR, "digests"), "w") as f:
    f.write("BIG=%s\nTRUNC=%s\nWRONG=%s\nGARBAGE=%s\nM1=%s\nM2=%s\nINDEX=%s\nCONFIG=%s\nREPO=%s\n" % (
        BIG, TRUNC, WRONG, GARBAGE, MANIFEST_DIGESTS["1"], MANIFEST_DIGESTS["2"], INDEX_DIGEST,
        CONFIG_DIGEST, REPO))


def read(name, default):
    try:
        with open(os.path.join(DIR, name)) as f:
            return f.read().strip() or default
    except OSError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, status, length, ctype, digest=None):
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", ctype)
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()

    def send(self, status, body, ctype="application/json", digest=None):
        self.head(status, len(body), ctype, digest)
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        path = self.path.split("?")[0]
        with open(os.path.join(DIR, "log"), "a") as log:
            log.write(json.dumps({"method": self.command, "path": path, "t": time.time()}) + "\n")
        if read("mode", "up") == "down":
            self.send(503, b'{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}')
            return
        prefix = "/v2/%s/" % REPO
        if path == "/v2/":
            self.send(200, b"{}")
        elif path == prefix + "blobs/" + BIG:
            self.head(200, BIG_SIZE, "application/octet-stream")
            if self.command == "HEAD":
                return
            start = time.time()
            for i in range(BIG_SIZE // BLOCK):
                self.wfile.write(big_block(i))
                ahead = (i + 1) * BLOCK / BIG_RATE - (time.time() - start)
                if ahead > 0:
                    time.sleep(ahead)
            with open(os.path.join(DIR, "log"), "a") as log:
                log.write(json.dumps({"method": "END", "path": path, "t": time.time()}) + "\n")
        elif path == prefix + "blobs/" + TRUNC:
            self.head(200, len(SMALL), "application/octet-stream")
            if self.command != "HEAD":
                self.wfile.write(SMALL[: len(SMALL) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif path == prefix + "blobs/" + WRONG:
            self.send(200, SMALL, "application/octet-stream")
        elif path == prefix + "blobs/" + GARBAGE:
            self.wfile.write(b"\x00\x01garbage that is no HTTP at all\r\n\r\n")
            self.close_connection = True
        elif path == prefix + "blobs/" + CONFIG_DIGEST:
            self.send(200, CONFIG, "application/vnd.oci.image.config.v1+json")
        elif path == prefix + "manifests/v1":
            n = read("tag", "1")
            self.send(200, MANIFESTS[n], MT_MANIFEST, MANIFEST_DIGESTS[n])
        elif path in (prefix + "manifests/multi", prefix + "manifests/" + INDEX_DIGEST):
            self.send(200, INDEX, MT_INDEX, INDEX_DIGEST)
        elif path.startswith(prefix + "manifests/sha256:"):
            for n, d in MANIFEST_DIGESTS.items():
                if path.endswith(d):
                    self.send(200, MANIFESTS[n], MT_MANIFEST, d)
                    return
            self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
        else:
            self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}')

    do_GET = handle_any
    do_HEAD = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
