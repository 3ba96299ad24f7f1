#!/usr/bin/env python3
"""After pushes and garbage collection on a cluster: is every acknowledged
image whole on every node, and is every deleted image gone?

Usage: cluster_verify.py LEDGER BASE_URL [BASE_URL...]

LEDGER: gc_push.py's lines "repo ref digest - keep|garbage" (ref "-" for a
push by digest).  The requests rotate over the BASE_URLs (the nodes and the
balancer), so an image is read through other nodes than the one that took
it.  For every "keep" line: the manifest by digest hashes to its digest,
the tag (if any) resolves to it, and every blob it lists is served with
the right digest and size.  For every "garbage" line (its tag was deleted):
the manifest by digest is counted if still served.
Prints "FAIL text" lines (at most 40), then "SUMMARY kept=N verified=N
blobs=N garbage=N garbage_left=N"; exit 0.
"""
import hashlib
import http.client
import json
import sys
import urllib.parse

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
ledger_path = sys.argv[1]
bases = [urllib.parse.urlsplit(b) for b in sys.argv[2:]]
for b in bases:
    assert b.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
conns = [None] * len(bases)
turn = [0]
fails = []


def get(path, accept=None):
    """GET through the next base URL; (status, headers, body)."""
    k = turn[0] % len(bases)
    turn[0] += 1
    for attempt in (0, 1):
        if conns[k] is None:
            conns[k] = http.client.HTTPConnection(bases[k].hostname, bases[k].port, timeout=30)
        try:
            conns[k].request("GET", path, headers={"Accept": accept} if accept else {})
            r = conns[k].getresponse()
            return r.status, {h.lower(): v for h, v in r.getheaders()}, r.read()
        except (http.client.HTTPException, OSError):
            conns[k].close()
            conns[k] = None
            if attempt:
                raise
    raise AssertionError("unreachable")


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


kept = verified = garbage = garbage_left = 0
blobs_ok = set()
with open(ledger_path) as f:
    lines = [l.split() for l in f if l.strip()]
for repo, ref, digest, _path, who in lines:
    if who == "garbage":
        garbage += 1
        st, _, _ = get("/v2/%s/manifests/%s" % (repo, digest), ACCEPT)
        if st == 200:
            garbage_left += 1
        continue
    kept += 1
    st, h, body = get("/v2/%s/manifests/%s" % (repo, digest), ACCEPT)
    if st != 200 or sha(body) != digest:
        fails.append("%s@%s: status %d, body hashes to %s" % (repo, digest, st, sha(body)))
        continue
    if ref != "-":
        st, h, _ = get("/v2/%s/manifests/%s" % (repo, ref), ACCEPT)
        if st != 200 or h.get("docker-content-digest") != digest:
            fails.append("%s:%s: status %d, digest %s, want %s" % (repo, ref, st, h.get("docker-content-digest"), digest))
            continue
    m = json.loads(body)
    good = True
    for d in [m["config"]] + m.get("layers", []):
        key = (repo, d["digest"])
        if key in blobs_ok:
            continue
        st, _, b = get("/v2/%s/blobs/%s" % (repo, d["digest"]))
        if st != 200 or sha(b) != d["digest"] or len(b) != d["size"]:
            fails.append("%s blob %s (of %s): status %d, %d bytes hashing to %s"
                         % (repo, d["digest"], digest, st, len(b), sha(b)))
            good = False
        else:
            blobs_ok.add(key)
    if good:
        verified += 1
for msg in fails[:40]:
    print("FAIL " + msg)
print("SUMMARY kept=%d verified=%d blobs=%d garbage=%d garbage_left=%d"
      % (kept, verified, len(blobs_ok), garbage, garbage_left))
