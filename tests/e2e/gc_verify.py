#!/usr/bin/env python3
"""After a GC test's load: is every acknowledged image still whole, and is
every image whose tag went collected?

Usage: gc_verify.py BASE_URL DATA_DIR LEDGER DELETIONS [before-gc]

LEDGER: one line per manifest PUT answered 201: "repo ref digest path who"
(ref "-" for a push by digest only).  DELETIONS: one line per DELETE of a
tag: "repo tag status".  For every (repo, ref, digest) acknowledged:
  - a tag still listed must resolve to the digest it was pushed with, the
    manifest bytes must hash to it, and every blob it lists (config, layers,
    index children) must be served with the right digest and size;
  - a tag no longer listed must have been deleted by some DELETE answered
    202 (else it was lost), and then its manifest must be gone (404), unless
    it is also acknowledged by digest or under another live tag;
  - a manifest pushed by digest must be served as above.
Then, from meta.db (read-only): every manifest with no tag and no parent
index must be one pushed by digest.
With "before-gc", the checks that garbage is gone are left out.
Prints "PASS text" / "FAIL text" lines and "INFO text" lines; exit 0.
"""
import hashlib
import http.client
import json
import sqlite3
import sys
import urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])

base, data_dir, ledger_path, deletions_path = sys.argv[1:5]
before_gc = len(sys.argv) > 5 and sys.argv[5] == "before-gc"
u = urllib.parse.urlsplit(base)
assert u.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
conn = None


def request(method, path, headers=None):
    global conn
    for attempt in range(4):
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if hdrs.get("connection", "").lower() == "close":
                conn.close()
                conn = None
            return r.status, hdrs, body
        except (http.client.HTTPException, OSError):
            if conn is not None:
                conn.close()
            conn = None
            if attempt == 3:
                raise
    raise RuntimeError("unreachable")


fails = []
passes = 0


def ok():
    global passes
    passes += 1


def fail(msg):
    fails.append(msg)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


acked = {}  # (repo, ref, digest) -> who
for line in open(ledger_path):
    f = line.split()
    if len(f) >= 3:
        acked[(f[0], f[1], f[2])] = f[4] if len(f) > 4 else "?"
deleted = set()
for line in open(deletions_path):
    f = line.split()
    if len(f) >= 3 and f[2] == "202":
        deleted.add((f[0], f[1]))

tags_cache = {}


def tags_of(repo):
    if repo in tags_cache:
        return tags_cache[repo]
    tags = set()
    path = "/v2/%s/tags/list?n=1000" % repo
    for _ in range(1000):
        st, h, body = request("GET", path)
        if st == 404:
            break
        if st != 200:
            fail("tags/list of %s: status %d" % (repo, st))
            break
        tags.update(json.loads(body).get("tags") or [])
        link = h.get("link")
        if not link:
            break
        path = link.split(";")[0].strip().strip("<>")
    tags_cache[repo] = tags
    return tags


blob_ok = set()


def verify_manifest(repo, ref, digest, who):
    st, h, body = request("GET", "/v2/%s/manifests/%s" % (repo, ref), {"Accept": ACCEPT})
    if st != 200:
        fail("%s %s:%s (%s): manifest GET status %d, want 200 (acknowledged image lost)"
             % (who, repo, ref, digest[:19], st))
        return False
    if sha(body) != digest:
        fail("%s %s:%s: manifest bytes hash to %s, want %s" % (who, repo, ref, sha(body), digest))
        return False
    if h.get("docker-content-digest") not in (None, digest):
        fail("%s %s:%s: Docker-Content-Digest %s, want %s"
             % (who, repo, ref, h.get("docker-content-digest"), digest))
        return False
    m = json.loads(body)
    ok_all = True
    if "manifests" in m:
        for c in m["manifests"]:
            ok_all &= verify_manifest(repo, c["digest"], c["digest"], who + " child")
    descs = ([m["config"]] if "config" in m else []) + list(m.get("layers", []))
    for d in descs:
        if (repo, d["digest"]) in blob_ok:
            continue
        st, _, b = request("GET", "/v2/%s/blobs/%s" % (repo, d["digest"]))
        if st != 200:
            fail("%s %s:%s: blob %s status %d, want 200 (referenced blob lost)"
                 % (who, repo, ref, d["digest"], st))
            ok_all = False
        elif sha(b) != d["digest"] or len(b) != d["size"]:
            fail("%s %s:%s: blob %s served %d bytes hashing to %s"
                 % (who, repo, ref, d["digest"], len(b), sha(b)))
            ok_all = False
        else:
            blob_ok.add((repo, d["digest"]))
    return ok_all


live = set()      # (repo, digest) that must stay
maybe_gone = set()
n_tagged = n_digest = n_lost = n_gone_checked = 0
for (repo, ref, digest), who in sorted(acked.items()):
    if ref == "-":
        live.add((repo, digest))
        n_digest += 1
        if verify_manifest(repo, digest, digest, who):
            ok()
        continue
    if ref in tags_of(repo):
        live.add((repo, digest))
        n_tagged += 1
        if verify_manifest(repo, ref, digest, who):
            ok()
    elif (repo, ref) in deleted:
        maybe_gone.add((repo, digest))
    else:
        n_lost += 1
        fail("%s %s:%s (%s): tag acknowledged, never deleted, no longer listed (tag lost)"
             % (who, repo, ref, digest[:19]))
for repo, digest in sorted(maybe_gone - live) if not before_gc else []:
    st, _, _ = request("GET", "/v2/%s/manifests/%s" % (repo, digest), {"Accept": ACCEPT})
    n_gone_checked += 1
    if st == 404:
        ok()
    else:
        fail("%s@%s: its tag was deleted, still served (status %d) after GC" % (repo, digest, st))

print("INFO acknowledged %d (repo, ref, digest): %d tags still live verified, %d by digest verified, "
      "%d deleted manifests checked gone, %d blobs verified"
      % (len(acked), n_tagged, n_digest, n_gone_checked, len(blob_ok)))

db = sqlite3.connect("file:%s/meta.db?mode=ro" % data_dir, uri=True, timeout=30)
rows = db.execute(
    "SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id"
    " WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)"
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs x WHERE x.child_id = m.id)").fetchall()
by_digest = {(r, d) for (r, ref, d) in acked if ref == "-"}
extra = [(r, d) for (r, d) in rows if (r, d) not in by_digest] if not before_gc else []
if extra:
    fail("%d untagged, unreferenced manifests left that were not pushed by digest, e.g. %s"
         % (len(extra), ", ".join("%s@%s" % x for x in extra[:3])))
else:
    ok()
print("INFO untagged manifests in meta.db: %d (all pushed by digest: %s)" % (len(rows), "yes" if not extra else "no"))

for m in fails[:40]:
    print("FAIL " + m)
if len(fails) > 40:
    print("FAIL ... and %d more failures" % (len(fails) - 40))
print("PASS %d checks passed" % passes if not fails else "INFO %d checks passed" % passes)
