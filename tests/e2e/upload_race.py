#!/usr/bin/env python3
"""Hammer upload sessions from many connections at once with conflicting
bodies, then check that everything the registry acknowledged as a blob is
exactly the bytes of its digest.

Each round opens one session and lets THREADS connections race on it: every
connection holds a different body of the same length (so that a mixed-up
file could still pass a size check) and sends it as a PATCH with
Content-Range, a PATCH without one, or a PUT carrying the body, then tries
to close the session with its own digest.  Whatever wins, a 201 must mean
that the blob stored under that digest is those bytes.

usage: upload_race.py URL REPO TOKEN ROUNDS THREADS
Prints one summary line; exits 1 on any violation."""
import hashlib
import http.client
import os
import random
import sys
import threading
import urllib.parse

url, repo, token, rounds, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
parsed = urllib.parse.urlparse(url)
auth = {"Authorization": "Bearer " + token} if token else {}

lock = threading.Lock()
created = {}          # digest -> body acknowledged with 201
violations = []
statuses = {}
barrier = threading.Barrier(threads + 1)
session = [None]      # location of this round's session
bodies = [None]


def note(status):
    with lock:
        statuses[status] = statuses.get(status, 0) + 1


def request(conn, method, path, body=b"", headers=None):
    h = dict(auth)
    h.update(headers or {})
    h["Content-Length"] = str(len(body))
    for attempt in range(3):
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheader("Location"), data
        except (ConnectionError, http.client.HTTPException, OSError):
            conn.close()
            conn.connect()
    raise RuntimeError("connection keeps failing")


def worker(index):
    rng = random.Random(index * 7919)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    for _ in range(rounds):
        barrier.wait()
        loc, body = session[0], bodies[0][index]
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        sep = "&" if "?" in loc else "?"
        kind = rng.randrange(3)
        if kind == 0:
            st, _, _ = request(conn, "PATCH", loc, body,
                               {"Content-Range": "0-%d" % (len(body) - 1),
                                "Content-Type": "application/octet-stream"})
        elif kind == 1:
            st, _, _ = request(conn, "PATCH", loc, body, {"Content-Type": "application/octet-stream"})
        else:
            st, _, _ = request(conn, "PUT", loc + sep + "digest=" + digest, body,
                               {"Content-Type": "application/octet-stream"})
        note(st)
        if st >= 500:
            violations.append("server error %d on round step %d" % (st, kind))
        if kind < 2:
            st, _, _ = request(conn, "PUT", loc + sep + "digest=" + digest)
            note(st)
            if st >= 500:
                violations.append("server error %d on closing PUT" % st)
        if st == 201:
            with lock:
                created[digest] = body
        barrier.wait()
    conn.close()


def main():
    rng = random.Random(1)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for r in range(rounds):
        st, loc, _ = request(conn, "POST", "/v2/%s/blobs/uploads/" % repo)
        if st != 202 or not loc:
            violations.append("POST answered %d" % st)
            loc = "/v2/%s/blobs/uploads/00000000000000000000000000000000" % repo
        length = rng.choice([1, 7, 64, 1000, 4096, 70000])
        bodies[0] = [os.urandom(length) for _ in range(threads)]
        session[0] = loc
        barrier.wait()
        barrier.wait()
    for t in pool:
        t.join()
    # Every acknowledged digest serves exactly its bytes...
    for digest, body in created.items():
        st, _, data = request(conn, "GET", "/v2/%s/blobs/%s" % (repo, digest))
        if st != 200 or data != body:
            violations.append("GET %s: status %d, %d bytes, content %s" %
                              (digest, st, len(data), "matches" if data == body else "DIFFERS"))
    # ...and so does a later honest push of any body of any round.
    sample = list(created.items())[:50]
    for digest, body in sample:
        st, _, _ = request(conn, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo + "-honest", digest), body)
        st2, _, data = request(conn, "GET", "/v2/%s/blobs/%s" % (repo + "-honest", digest))
        if st != 201 or st2 != 200 or data != body:
            violations.append("honest push of %s: %d/%d, content %s" %
                              (digest, st, st2, "matches" if data == body else "DIFFERS"))
    conn.close()
    print("rounds=%d threads=%d blobs_created=%d statuses=%s violations=%d" %
          (rounds, threads, len(created), dict(sorted(statuses.items())), len(violations)))
    for v in violations[:20]:
        print("  " + v)
    return 1 if violations else 0


sys.exit(main())
