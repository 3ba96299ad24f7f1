#!/usr/bin/env python3
"""Concurrent pushers and a verifier for the kill -9 test of berthd.

push URL LEDGER ERRORS WORKERS SEED
    WORKERS threads push until the server goes away (the first connection
    error ends a worker): single-request blobs (POST ?digest=), POST + PUT
    blobs, chunked uploads (POST, PATCH with Content-Range, PUT), now and
    then a sha512 blob or content another worker may push at the same
    moment, and image manifests under tags of their own that reference
    blobs the worker saw acknowledged.  Every 201 is appended to LEDGER as
    one line ("blob REPO DIGEST SIZE" or "manifest REPO TAG DIGEST"),
    written with O_APPEND only after the response was read in full.  Any
    answer that is neither the expected status nor a broken connection
    goes to ERRORS.

verify URL LEDGER FROM
    GET everything in LEDGER from line FROM on: blobs must hash to their
    digest and have their size, manifests must come back byte-identical
    under their tag.  Prints one line per failure and a count; exit 1 on
    any failure.

Only loopback URLs are accepted.
"""
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import urllib.parse

TENANT = "0146e9b57080961e2c83536300000000"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class ServerGone(Exception):
    pass


def parse_url(url):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("refusing non-loopback URL " + url)
    return u.hostname, u.port


def digest_of(data, alg="sha256"):
    return alg + ":" + hashlib.new(alg, data).hexdigest()


class Client:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict lower-case, body bytes); ServerGone on any
        connection failure, including a response cut short."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, hdrs, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection the server closed while idle is
                # retried once on a fresh one; anything else means it is gone.
                self.conn.close()
                self.conn = None
                if attempt == 2 or method != "GET":
                    raise ServerGone(str(e))
            except (OSError, http.client.HTTPException) as e:
                if self.conn:
                    self.conn.close()
                self.conn = None
                raise ServerGone(str(e))
        raise ServerGone("unreachable")


class Pusher(threading.Thread):
    def __init__(self, n, host, port, ledger_fd, errors_fd, seed, shared):
        super().__init__(daemon=True)
        self.n = n
        self.client = Client(host, port)
        self.ledger_fd = ledger_fd
        self.errors_fd = errors_fd
        self.rng = random.Random(seed * 1000 + n)
        self.shared = shared
        self.repo = "%s/crash-w%d" % (TENANT, n % 2)
        self.acked = []  # (digest, size) of blobs acknowledged in self.repo
        self.pushes = 0

    def record(self, line):
        os.write(self.ledger_fd, (line + "\n").encode())

    def error(self, what, status, body):
        os.write(self.errors_fd, ("worker %d: %s: status %s: %r\n" % (self.n, what, status, body[:200])).encode())

    def expect(self, what, got, want, body):
        if got != want:
            self.error(what, got, body)
            return False
        return True

    def blob_content(self):
        if self.rng.random() < 0.15:
            return self.shared[self.rng.randrange(len(self.shared))]
        size = self.rng.choice([self.rng.randrange(1, 4096), self.rng.randrange(4096, 512 << 10),
                                self.rng.randrange(512 << 10, 2 << 20)])
        return os.urandom(size)

    def push_mono(self, data, alg):
        d = digest_of(data, alg)
        st, _, body = self.client.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (self.repo, d), data,
                                          {"Content-Type": "application/octet-stream"})
        return d if self.expect("POST ?digest=", st, 201, body) else None

    def start_session(self):
        st, h, body = self.client.request("POST", "/v2/%s/blobs/uploads/" % self.repo, b"",
                                          {"Content-Length": "0"})
        if not self.expect("POST session", st, 202, body):
            return None
        return h.get("location")

    @staticmethod
    def with_digest(loc, d):
        return loc + ("&" if "?" in loc else "?") + "digest=" + d

    def push_post_put(self, data):
        d = digest_of(data)
        loc = self.start_session()
        if not loc:
            return None
        st, _, body = self.client.request("PUT", self.with_digest(loc, d), data,
                                          {"Content-Type": "application/octet-stream"})
        return d if self.expect("PUT with body", st, 201, body) else None

    def push_chunked(self, data):
        d = digest_of(data)
        loc = self.start_session()
        if not loc:
            return None
        cuts = sorted(self.rng.sample(range(1, len(data)), min(len(data) - 1, self.rng.randrange(1, 4))))
        start = 0
        for end in cuts + [len(data)]:
            st, h, body = self.client.request("PATCH", loc, data[start:end],
                                              {"Content-Type": "application/octet-stream",
                                               "Content-Range": "%d-%d" % (start, end - 1)})
            if not self.expect("PATCH", st, 202, body):
                return None
            loc = h.get("location", loc)
            start = end
        st, _, body = self.client.request("PUT", self.with_digest(loc, d), b"", {"Content-Length": "0"})
        return d if self.expect("PUT closing", st, 201, body) else None

    def push_blob(self):
        data = self.blob_content()
        kind = self.rng.random()
        if kind < 0.1:
            d = self.push_mono(data, "sha512")
        elif kind < 0.45:
            d = self.push_mono(data, "sha256")
        elif kind < 0.65:
            d = self.push_post_put(data)
        else:
            d = self.push_chunked(data) if len(data) > 1 else self.push_mono(data, "sha256")
        if d:
            self.acked.append((d, len(data)))
            self.record("blob %s %s %d" % (self.repo, d, len(data)))

    def push_manifest(self):
        sha256_blobs = [b for b in self.acked if b[0].startswith("sha256:")]
        if len(sha256_blobs) < 2:
            return self.push_blob()
        cfg = self.rng.choice(sha256_blobs)
        layers = self.rng.sample(sha256_blobs, min(len(sha256_blobs), self.rng.randrange(1, 4)))
        m = json.dumps({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                        "config": {"mediaType": MT_CONFIG, "digest": cfg[0], "size": cfg[1]},
                        "layers": [{"mediaType": MT_LAYER, "digest": d, "size": s} for d, s in layers],
                        "annotations": {"nonce": os.urandom(8).hex()}},
                       separators=(",", ":")).encode()
        tag = "w%d-%s" % (self.n, os.urandom(6).hex())
        st, _, body = self.client.request("PUT", "/v2/%s/manifests/%s" % (self.repo, tag), m,
                                          {"Content-Type": MT_MANIFEST})
        if self.expect("PUT manifest", st, 201, body):
            self.record("manifest %s %s %s" % (self.repo, tag, digest_of(m)))

    def run(self):
        try:
            while True:
                if self.rng.random() < 0.3:
                    self.push_manifest()
                else:
                    self.push_blob()
                self.pushes += 1
        except ServerGone:
            pass


def push(url, ledger, errors, workers, seed):
    host, port = parse_url(url)
    ledger_fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    errors_fd = os.open(errors, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    shared_rng = random.Random(seed)
    shared = [shared_rng.randbytes(n) for n in (3000, 70000, 1500000)]
    threads = [Pusher(i, host, port, ledger_fd, errors_fd, seed, shared) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print("pushers started %d pushes" % sum(t.pushes for t in threads))


def verify(url, ledger, start):
    host, port = parse_url(url)
    client = Client(host, port)
    blobs = manifests = failures = 0
    with open(ledger) as f:
        lines = f.read().splitlines()[start:]
    for line in lines:
        parts = line.split()
        try:
            if parts[0] == "blob":
                _, repo, d, size = parts
                blobs += 1
                st, h, body = client.request("GET", "/v2/%s/blobs/%s" % (repo, d))
                alg = d.split(":", 1)[0]
                if st != 200 or len(body) != int(size) or digest_of(body, alg) != d:
                    failures += 1
                    print("FAIL acknowledged blob %s in %s: status %d, %d bytes (want %s), digest %s" %
                          (d, repo, st, len(body), size, digest_of(body, alg)))
            elif parts[0] == "manifest":
                _, repo, tag, d = parts
                manifests += 1
                st, h, body = client.request("GET", "/v2/%s/manifests/%s" % (repo, tag),
                                             headers={"Accept": MT_MANIFEST})
                if st != 200 or digest_of(body) != d or h.get("docker-content-digest") != d:
                    failures += 1
                    print("FAIL acknowledged manifest %s:%s: status %d, digest %s (want %s)" %
                          (repo, tag, st, digest_of(body), d))
            else:
                failures += 1
                print("FAIL unreadable ledger line %r" % line)
        except ServerGone as e:
            failures += 1
            print("FAIL server unreachable while verifying: %s" % e)
            break
    print("verified %d blobs, %d manifests, %d failures" % (blobs, manifests, failures))
    return 1 if failures else 0


def main(argv):
    if len(argv) == 6 and argv[0] == "push":
        push(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))
        return 0
    if len(argv) == 4 and argv[0] == "verify":
        return verify(argv[1], argv[2], int(argv[3]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
