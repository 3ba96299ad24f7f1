#!/usr/bin/env python3
"""Pushes many small images quickly (keep-alive connections, a few threads)
for the GC end-to-end tests; plain HTTP to a loopback registry without
authentication.

Usage: gc_push.py BASE_URL REPO_PREFIX NREPOS COUNT THREADS MODE TAG_PREFIX
                  LEDGER DELETIONS [BY_DIGEST_EVERY] [DANGLING]

Image i goes to repository REPO_PREFIX/r(i % NREPOS): a config of its own,
a layer of its own (1-4 KiB), one of 3 shared "mid" layers and a base layer
shared by every image of every run (fixed bytes).  Blobs go up with a
single POST ?digest=; the shared ones are first probed with HEAD and, one
time in three, uploaded again anyway (a duplicate upload).  The manifest is
PUT by tag TAG_PREFIX-i, or by digest when BY_DIGEST_EVERY > 0 and
i % BY_DIGEST_EVERY == 0.
MODE keep: each acknowledged manifest is appended to LEDGER as
  "repo ref digest - keep" (ref "-" when pushed by digest).
MODE garbage: each tag is deleted right after its 201; LEDGER gets
  "repo tag digest - garbage" and DELETIONS "repo tag status".
DANGLING: that many extra blobs are pushed and never referenced.
Exit 1 if any step failed; prints a one-line summary.
"""
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import urllib.parse

(base, prefix, nrepos, count, threads, mode, tag_prefix,
 ledger_path, deletions_path) = sys.argv[1:10]
by_digest_every = int(sys.argv[10]) if len(sys.argv) > 10 else 0
dangling = int(sys.argv[11]) if len(sys.argv) > 11 else 0
nrepos, count, threads = int(nrepos), int(count), int(threads)
u = urllib.parse.urlsplit(base)
assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"

MT_M = "application/vnd.oci.image.manifest.v1+json"
MT_C = "application/vnd.oci.image.config.v1+json"
MT_L = "application/vnd.oci.image.layer.v1.tar+gzip"
rng = random.Random(20261130)
BASE = bytes(rng.getrandbits(8) for _ in range(65536))
MIDS = [bytes(rng.getrandbits(8) for _ in range(8192 + 1024 * k)) for k in range(3)]


def dg(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


lock = threading.Lock()
ledger = open(ledger_path, "a")
deletions = open(deletions_path, "a")
stats = {"ok": 0, "fail": 0, "deleted": 0, "dup": 0, "dangling": 0}
errors = []


class Client:
    def __init__(self):
        self.c = None

    def req(self, method, path, body=None, headers=None):
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                if (r.getheader("Connection") or "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, data
            except (http.client.HTTPException, OSError):
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def blob(self, repo, data, shared, i):
        d = dg(data)
        if shared and i % 3 != 0:
            st, _ = self.req("HEAD", "/v2/%s/blobs/%s" % (repo, d))
            if st == 200:
                return True
        elif shared:
            with lock:
                stats["dup"] += 1
        st, body = self.req("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data,
                            {"Content-Type": "application/octet-stream"})
        if st != 201:
            with lock:
                errors.append("POST blob %s to %s: %d %s" % (d[:19], repo, st, body[:200]))
            return False
        return True


def image(cl, i):
    repo = "%s/r%d" % (prefix, i % nrepos)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Labels": {"berth.gc": "%s-%d" % (tag_prefix, i)}},
                      "rootfs": {"type": "layers", "diff_ids": []}}, separators=(",", ":")).encode()
    own = os.urandom(1024 + (i * 37) % 3072)
    mid = MIDS[i % 3]
    for b, shared in ((BASE, True), (mid, True), (own, False), (cfg, False)):
        if not cl.blob(repo, b, shared, i):
            return False
    m = json.dumps({"schemaVersion": 2, "mediaType": MT_M,
                    "config": {"mediaType": MT_C, "digest": dg(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": MT_L, "digest": dg(b), "size": len(b)}
                               for b in (BASE, mid, own)]}, separators=(",", ":")).encode()
    md = dg(m)
    by_digest = mode == "keep" and by_digest_every > 0 and i % by_digest_every == 0
    ref = md if by_digest else "%s-%d" % (tag_prefix, i)
    st, body = cl.req("PUT", "/v2/%s/manifests/%s" % (repo, ref), m, {"Content-Type": MT_M})
    if st != 201:
        with lock:
            errors.append("PUT manifest %s:%s: %d %s" % (repo, ref, st, body[:200]))
        return False
    if mode == "keep":
        with lock:
            ledger.write("%s %s %s - keep\n" % (repo, "-" if by_digest else ref, md))
            ledger.flush()
        return True
    with lock:
        ledger.write("%s %s %s - garbage\n" % (repo, ref, md))
        ledger.flush()
    st, _ = cl.req("DELETE", "/v2/%s/manifests/%s" % (repo, ref))
    with lock:
        deletions.write("%s %s %d\n" % (repo, ref, st))
        deletions.flush()
        if st == 202:
            stats["deleted"] += 1
    if st != 202:
        with lock:
            errors.append("DELETE %s:%s: %d" % (repo, ref, st))
        return False
    return True


def worker(k):
    cl = Client()
    for i in range(k, count, threads):
        try:
            good = image(cl, i)
        except Exception as e:  # noqa: BLE001 - reported, counted
            with lock:
                errors.append("image %d: %r" % (i, e))
            good = False
        with lock:
            stats["ok" if good else "fail"] += 1
    for j in range(k, dangling, threads):
        try:
            if cl.blob("%s/r%d" % (prefix, j % nrepos), os.urandom(2048 + j), False, j):
                with lock:
                    stats["dangling"] += 1
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append("dangling %d: %r" % (j, e))


ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("pushed %d images (%d failed), %d tags deleted, %d uploads of shared layers without a HEAD (duplicates), %d unreferenced blobs"
      % (stats["ok"], stats["fail"], stats["deleted"], stats["dup"], stats["dangling"]))
for e in errors[:10]:
    print("error: " + e)
sys.exit(1 if errors else 0)
